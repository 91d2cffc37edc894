"""Componentize: one WebAssembly component per agent, from its staged code, its deps and the guest harness."""

import hashlib
import re
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from wasm_agents.builder.bytecode import compile_bytecode, compile_for_host
from wasm_agents.builder.runtime import guest_stdlib, tree_lines
from wasm_agents.builder.toolchain import run_componentize_py
from wasm_agents.errors import BuildError
from wasm_agents.paths import cache_dir, publish_folder, write_atomically
from wasm_agents.sandbox import CODE_MOUNT, DEPS_MOUNT, GUEST_DIR, HARNESS_MODULE, SANDBOX_MOUNT, STDLIB_MOUNT, WIT_DIR

# How components are made, part of their cache key: edit it with the method, so the cache never serves what an older method made.
METHOD = "componentize-py snapshot of the harness and the agent, gc-frozen; guest-compiled bytecode for the modules it lacks"

# C modules of CPython that its WASI build lacks (the sandbox stands in for _bz2 and _lzma, and ctypes for packages).
WASI_LACKS = frozenset({
    "_ctypes", "ctypes", "_ssl", "ssl", "mmap", "_multiprocessing", "_posixsubprocess", "fcntl", "termios", "pwd", "grp",
    "resource", "readline", "_curses", "curses", "_tkinter", "tkinter", "_dbm", "_gdbm", "_hashlib", "_uuid", "_posixshmem",
})

# How the guest's traceback ends when the harness finds the agent module's `main` missing or not callable.
MAIN_NOT_CALLABLE = f"{HARNESS_MODULE}.MainNotCallable: "

# The flags word of an unchecked-hash .pyc (PEP 552): valid whatever the source's mtime.
PYC_UNCHECKED_HASH = 0b01


def componentize(agent_name: str, code_dir: Path, site_packages: Path, output: Path, *, fuel: bool = False) -> bool:
    """Write the agent's component to `output`, and bytecode for what its snapshot lacks into `code_dir` and `site_packages`.

    `fuel` says which engine the component will run on (it is compiled for this host along the way).
    Return True when both came from the cache.
    """
    key = inputs_key(code_dir, site_packages)
    cached, bytecode = cache_dir("components") / f"{key}.wasm", cache_dir("bytecode") / key
    hit = cached.is_file() and bytecode.is_dir()
    if not cached.is_file():
        _build(agent_name, code_dir, site_packages, cached)
    if not bytecode.is_dir():
        _compile(agent_name, cached, fuel, code_dir, site_packages, bytecode)  # compiles the component for this host too
    else:
        compile_for_host(cached, fuel)  # the compiled cache may have been cleaned since
    shutil.copyfile(cached, output)
    for name, target in (("code", code_dir), ("deps", site_packages)):
        if (bytecode / name).is_dir():
            shutil.copytree(bytecode / name, target, dirs_exist_ok=True)
    return hit


def _build(agent_name: str, code_dir: Path, site_packages: Path, component: Path) -> None:
    """Run componentize-py and cache the component at `component`."""
    with tempfile.TemporaryDirectory(prefix="wasm-agents-componentize-") as work:
        # componentize-py writes __pycache__ into the folders it reads: give it copies.
        work_path = Path(work)
        paths = [shutil.copytree(source, work_path / name) for name, source in
                 (("code", code_dir), ("deps", site_packages), ("guest", GUEST_DIR))]
        built = work_path / "component.wasm"
        process = run_componentize_py(HARNESS_MODULE, paths, built, work_path)
        if process.returncode != 0 or not built.is_file():
            raise BuildError(f"agent '{agent_name}': {failure(process.stderr, code_dir.name)}")
        write_atomically(component, built.read_bytes())


def _compile(agent_name: str, component: Path, fuel: bool, code_dir: Path, site_packages: Path, bytecode: Path) -> None:
    """Have the component compile what its snapshot lacks, in copies of its folders; cache the .pyc files under `bytecode`."""
    with tempfile.TemporaryDirectory(prefix="wasm-agents-bytecode-") as work:
        copies = {name: shutil.copytree(source, Path(work) / name) for name, source in (("code", code_dir), ("deps", site_packages))}
        compile_bytecode(agent_name, component, fuel, copies["code"], copies["deps"], guest_stdlib())
        staged = Path(tempfile.mkdtemp(prefix=f".{bytecode.name}-", dir=bytecode.parent))
        for name, copy in copies.items():
            _copy_unchecked_bytecode(copy, staged / name)
        publish_folder(staged, bytecode)


def _copy_unchecked_bytecode(source: Path, target: Path) -> None:
    """Copy the unchecked-hash .pyc files under `source` (the harness's, not any left by a source's own tree) to `target`."""
    for pyc in source.rglob("__pycache__/*.pyc"):
        with open(pyc, "rb") as handle:
            if int.from_bytes(handle.read(8)[4:8], "little") != PYC_UNCHECKED_HASH:
                continue
        destination = target / pyc.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pyc, destination)


def inputs_key(code_dir: Path, site_packages: Path) -> str:
    """Hash everything a component is made from, plus the tool versions."""
    digest = hashlib.sha256()
    digest.update(f"{METHOD}; componentize-py {version('componentize-py')}\n".encode())
    for label, root in (("code", code_dir), ("deps", site_packages), ("guest", GUEST_DIR), ("wit", WIT_DIR)):
        for line in tree_lines(root):
            digest.update(f"{label}/{line}\n".encode())
    return digest.hexdigest()


def failure(stderr: str, folder: str, harness: tuple[str, ...] = (SANDBOX_MOUNT,)) -> str:
    """Say why importing the agent failed at build time: the guest's traceback in the user's paths, and a hint.

    Frames in the `harness` folders, or of code that is no file (the harness's own), say nothing to the user.
    """
    trace = _guest_traceback(stderr)
    if trace is None:
        return f"componentize-py failed: {_reason(stderr)}"
    frames, error = trace
    if error.startswith(MAIN_NOT_CALLABLE):  # the harness found the module's `main` unusable
        return f"{folder}/main.py: {error.removeprefix(MAIN_NOT_CALLABLE)}"
    lines = [f"importing {folder}/main.py failed at build time: {error}"]
    for frame, source in frames:
        if not frame.startswith(("<", *(f"{mount}/" for mount in harness))):
            lines.append(f"  {_user_path(frame, folder)}: {source}")
    missing = re.fullmatch(r"(?:ModuleNotFoundError|ImportError): No module named '([\w.]+)'.*", error)
    if missing:
        lines.append(f"  hint: {_hint(missing[1], folder, frames[-1][0] if frames else '')}")
    return "\n".join(lines)


def _guest_traceback(stderr: str) -> tuple[list[tuple[str, str]], str] | None:
    """Return the frames (file:line, source) and the error line of the guest's last traceback in componentize-py's output."""
    guest = stderr.split("\n\nCaused by:", 1)[0]
    start = guest.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    frames: list[tuple[str, str]] = []
    lines = guest[start:].splitlines()[1:]
    for index, line in enumerate(lines):
        if match := re.match(r'\s+File "([^"]+)", line (\d+)', line):
            source = lines[index + 1].strip() if index + 1 < len(lines) and lines[index + 1].startswith("    ") else ""
            frames.append((f"{match[1]}:{match[2]}", source))
        elif line and not line.startswith(" ") and ":" in line:
            return frames, line.strip()
    return None


def _user_path(frame: str, folder: str) -> str:
    """Name a guest file as the user knows it: their agent's file, a vendored package's, or the stdlib's."""
    for mount, shown in ((CODE_MOUNT, folder), (DEPS_MOUNT, "site-packages"), (STDLIB_MOUNT, "stdlib")):
        if frame.startswith(mount + "/"):
            return f"{shown}/{frame.removeprefix(mount + '/')}"
    return frame


def _hint(module: str, folder: str, importer: str) -> str:
    """Explain a module missing at build time."""
    top = module.split(".")[0]
    if top in WASI_LACKS:
        return f"'{top}' is a part of CPython that its WASI build (the sandbox's interpreter) does not have: no code in the sandbox can import it"
    if importer.startswith(DEPS_MOUNT + "/"):
        package = importer.removeprefix(DEPS_MOUNT + "/").split("/")[0]
        return f"package '{package}' imports '{module}', which is not installed: add the package that provides it to {folder}/requirements.txt"
    return f"'{module}' is neither in the stdlib nor in {folder}/requirements.txt: add the package that provides it"


def _reason(stderr: str) -> str:
    """Pick the line that says why: the last line of a Python traceback, else the last non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.split(":", 1)[0].endswith(("Error", "Exception")) or line.startswith("Caused by"):
            return line
    return lines[-1] if lines else "no output"
