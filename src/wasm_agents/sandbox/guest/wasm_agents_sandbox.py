"""Adapts the guest's stdlib to the sandbox: what WASI cannot do fails with an error that says so.

Imported first by the harness, at build time, so its effects are part of every snapshot. Modules the
guest interpreter lacks behave as on a platform without the feature: those that platforms commonly
lack (fcntl, pwd, ...) raise ModuleNotFoundError, which packages already handle; those every
mainstream platform has (bz2, lzma) import and fail when used, so packages importing them at module
level still load. ctypes and ssl are absent for agent code, as native code and TLS are; packages that
only name them at import time (sympy sizes C types, PyJWT names SSLContext) get stand-ins that cannot
load native code or open a TLS connection.
"""

import _thread
import errno
import hashlib
import json
import os
import sys
import time
from importlib.machinery import ModuleSpec, PathFinder
from importlib.util import spec_from_file_location

import wit_world  # the bindings of the host imports, generated into the component
from wasm_agents_protocol import DEPS_MOUNT, SCRATCH_MOUNT

SANDBOX = "the wasm-agents sandbox"
SHIMS = os.path.join(os.path.dirname(__file__), "shims")
DEPS = DEPS_MOUNT + "/"

# Modules that platforms commonly lack: absent, with the reason.
ABSENT = {
    "_ssl": "TLS (the ssl module)",
    "_curses": "a terminal (curses)",
    "readline": "a terminal (readline)",
    "termios": "a terminal (termios)",
    "fcntl": "file locking (fcntl)",
    "pwd": "a user database (pwd)",
    "grp": "a group database (grp)",
    "resource": "process resource limits (resource)",
    "syslog": "a system log (syslog)",
}
# Modules of every mainstream platform: stand-ins that import and fail when used.
STAND_INS = {"_bz2", "_lzma"}
PACKAGES_ONLY = {"ctypes", "ssl"}


def _loop_without_self_pipe(selector_events) -> None:
    """asyncio's loops wake themselves through a socket pair, and the sandbox has no sockets: with one thread and
    no signal handlers nothing else can add work while the loop waits, so the loop does without."""
    loop = selector_events.BaseSelectorEventLoop
    loop._make_self_pipe = loop._close_self_pipe = loop._write_to_self = lambda self: None


def _no_processes(subprocess) -> None:
    def refuse(self, *args, **kwargs):
        raise OSError(errno.ENOTSUP, f"wasi does not support processes: subprocesses are not available in {SANDBOX}")

    subprocess.Popen.__init__ = refuse


def _temporary_files_in_scratch(tempfile) -> None:
    """The one writable place an agent may have is its /scratch: temporary files go there, and without it the
    error names the setting."""
    find = tempfile._get_default_tempdir

    def default_tempdir(*args, **kwargs):
        try:
            return find(*args, **kwargs)
        except FileNotFoundError:
            raise FileNotFoundError(
                errno.ENOENT,
                f"no temporary directory: {SANDBOX} gives an agent one only with `scratch = true` under [files] in "
                "its agent.toml (a private /scratch, fresh for every invocation)",
            ) from None

    tempfile._candidate_tempdir_list = lambda: [SCRATCH_MOUNT]
    tempfile._get_default_tempdir = default_tempdir


def _no_name_resolution(socket) -> None:
    """Names are never looked up inside the sandbox: the lookups fail at once, as on a machine without resolvers,
    and never reach WASI (which has aborted a guest on some lookups)."""

    def refuse(*args, **kwargs):
        raise socket.gaierror(socket.EAI_FAIL, f"Non-recoverable error: no name resolution in {SANDBOX}")

    for name in ("getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        setattr(socket, name, refuse)


def _records_as_events(logging) -> None:
    """Log records that would go to stderr go to the host as the agent's log events instead, at their own level:
    those no handler takes (Python's last resort), and those of basicConfig() without a stream or file."""

    class HostHandler(logging.Handler):
        def emit(self, record) -> None:
            try:
                message = self.format(record)
            except Exception:  # noqa: BLE001 - as logging's own handlers do
                self.handleError(record)
                return
            level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING else "info" if record.levelno >= logging.INFO else "debug"
            wit_world.log(level, json.dumps({"message": message, "logger": record.name}))

    logging.lastResort = HostHandler(logging.WARNING)
    configure = logging.basicConfig

    def basic_config(**kwargs) -> None:
        if not {"stream", "filename", "handlers"} & kwargs.keys():
            kwargs["handlers"] = [HostHandler()]
        configure(**kwargs)

    logging.basicConfig = basic_config


def _requests_through_host(module) -> None:
    """HTTP clients send through the host, which makes a request only where the agent's allow list says."""
    import wasm_agents_http

    wasm_agents_http.install(module)


# Modules changed as they are first imported: patched then, they cost no snapshot memory until used.
PATCHES = {
    "logging": _records_as_events,
    "http.client": _requests_through_host,
    "urllib3.connectionpool": _requests_through_host,
    "httpx._transports.default": _requests_through_host,
    "asyncio.selector_events": _loop_without_self_pipe,
    "socket": _no_name_resolution,
    "subprocess": _no_processes,
    "tempfile": _temporary_files_in_scratch,
}


class _PatchingLoader:
    """Runs a module's own loader, then its patch."""

    def __init__(self, loader, patch) -> None:
        self._loader, self._patch = loader, patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)  # get_source, get_filename, ... as the module's own loader has them


class _SandboxModules:
    """A meta path finder, consulted first, for the modules above."""

    @staticmethod
    def find_spec(name: str, path=None, target=None) -> ModuleSpec | None:
        if name in PATCHES and (spec := PathFinder.find_spec(name, path)) is not None:
            spec.loader = _PatchingLoader(spec.loader, PATCHES[name])
            return spec
        if name in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r}: {ABSENT[name]} is not available in {SANDBOX}", name=name)
        if name in STAND_INS:
            return spec_from_file_location(name, os.path.join(SHIMS, f"{name}.py"))
        if name in PACKAGES_ONLY:
            if not _imported_by_a_package():
                if name == "ctypes":  # native code: absent, as it always was (tests/security)
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None  # the stdlib's own module, which says why it cannot load
            folder = os.path.join(SHIMS, name)
            if not os.path.isdir(folder):
                return spec_from_file_location(name, f"{folder}.py")
            return spec_from_file_location(name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
        return None


def _imported_by_a_package() -> bool:
    """True when the code asking for the module is a vendored package's, not the agent's own."""
    frame = sys._getframe(2)  # past this function and find_spec
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib") or "/importlib/" in frame.f_code.co_filename):
        frame = frame.f_back
    return frame is not None and frame.f_code.co_filename.startswith(DEPS)


def _no_threads(*args, **kwargs):
    raise RuntimeError(f"can't start new thread: threads are not available in {SANDBOX}")


def pbkdf2_hmac(hash_name: str, password: bytes, salt: bytes, iterations: int, dklen: int | None = None) -> bytes:
    """PBKDF2 (RFC 8018) with HMAC, as hashlib has it when built with OpenSSL, which the guest's CPython is not."""
    import hmac

    password, salt = memoryview(password).tobytes(), memoryview(salt).tobytes()
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    keyed = hmac.new(password, digestmod=hash_name)  # copied for each round: the key is hashed once
    size = keyed.digest_size
    dklen = size if dklen is None else dklen
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    blocks = []
    for index in range(1, -(-dklen // size) + 1):
        mac = keyed.copy()
        mac.update(salt + index.to_bytes(4, "big"))
        block = mac.digest()
        total = int.from_bytes(block, "big")
        for _ in range(iterations - 1):
            mac = keyed.copy()
            mac.update(block)
            block = mac.digest()
            total ^= int.from_bytes(block, "big")
        blocks.append(total.to_bytes(size, "big"))
    return b"".join(blocks)[:dklen]


def _checked_strings(host_import):
    """A host import that raises UnicodeEncodeError for a string the component model cannot carry (a lone
    surrogate), where the guest would otherwise abort."""

    def call(*args):
        for arg in args:
            if isinstance(arg, str):
                arg.encode("utf-8")
        return host_import(*args)

    return call


def _user_id() -> int:
    """The one user of the sandbox, as Pyodide reports it too: WASI has no users, and packages ask (platformdirs)."""
    return 0


sys.meta_path.insert(0, _SandboxModules)
for _name in ("getuid", "geteuid", "getgid", "getegid"):
    if not hasattr(os, _name):
        setattr(os, _name, _user_id)
del _name
if not hasattr(hashlib, "pbkdf2_hmac"):
    hashlib.pbkdf2_hmac = pbkdf2_hmac
_thread.start_new_thread = _thread.start_new = _thread.start_joinable_thread = _no_threads
if "threading" in sys.modules:
    sys.modules["threading"]._start_joinable_thread = _no_threads
# WASI's process clock counts from when the snapshot was made, on another machine's clock (negative here); each
# invocation has a fresh instance whose monotonic clock starts with it, a bound on the CPU time it used.
time.process_time, time.process_time_ns = time.monotonic, time.monotonic_ns
wit_world.log, wit_world.host_call = _checked_strings(wit_world.log), _checked_strings(wit_world.host_call)
