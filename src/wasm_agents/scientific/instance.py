"""Python code run in a fresh instance of the scientific runtime, under an agent's limits.

The runtime is a WASI preview 1 reactor: the host writes source into its memory (`host_alloc`) and
calls `turn`, which runs it in `__main__`; the guest's `_host.call(frame)` reaches the host through
its one import, `host.call`. Each invocation gets its own Store and instance (`Instance.start`), WASI
with no arguments, no environment, no network and no folders but the runtime's standard library zip
and the ones it is given, all read-only, its memory capped by the Store's limits, its time by an epoch
deadline and a `poll_oneoff` of the host's own that never waits past that deadline, so `time.sleep`
cannot hold it. An instance may start from a memory image (scientific.image) instead of the bare runtime.
"""

import errno
import math
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmtime import Caller, Engine, ExitTrap, FuncType, Linker, Store, Trap, TrapCode, ValType, WasiConfig, WasmtimeError

from wasm_agents.errors import ErrorKind, Failure
from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox import guest_json
from wasm_agents.sandbox.compile_cache import Compiling
from wasm_agents.sandbox.engine import EPOCH_TICK_S, engines
from wasm_agents.sandbox.invocation import MAX_ERROR_REPORT_BYTES, ms_since, refused_result, reported_failure
from wasm_agents.scientific.module import load_module
from wasm_agents.scientific.wheel import STDLIB_MOUNT, RuntimeFiles, runtime_files

if TYPE_CHECKING:
    from wasm_agents.scientific.image import Image

# The guest's half: runs the agent's source as a module and sends its entry's JSON result (or its
# exception) back in one frame. Arguments arrive as string literals, so nothing the agent sends is parsed as code.
HARNESS = """\
def _wasm_agents_run(source, filename, entry, task_json):
    import _host, json, sys, types  # in the snapshot already; traceback is not, so only a failure imports it
    try:
        module = types.ModuleType(filename.removesuffix(".py"))
        module.__file__ = filename
        sys.modules[module.__name__] = module
        exec(compile(source, filename, "exec"), module.__dict__)
        frame = b"result\\n" + json.dumps(getattr(module, entry)(json.loads(task_json))).encode()
    except BaseException as error:
        import traceback
        frames = traceback.format_exception(type(error), error, error.__traceback__.tb_next)  # from the agent's frame on
        report = {"type": type(error).__name__, "message": str(error), "traceback": "".join(frames)}
        frame = b"error\\n" + json.dumps(report).encode()
    _host.call(frame)
_wasm_agents_run(%r, %r, %r, %r)
"""

WARM_UP_FUEL = 2**62  # instantiating and restoring may be charged for; the agent's budget starts after them
NO_HOST, HOST_FAULT = -1, -2  # what host.call returns besides 0, as the guest's _host reads it
# The most an answer may carry, checked before the host copies it. Host calls and log records are read whole, as a
# component's are, and refused where they land: a delegation past its payload limit, a record past the output limit
# (which ends the guest), each with the error a component gets.
_ANSWER_BOUNDS: dict[bytes, Callable[[Limits], int]] = {
    b"result": lambda limits: limits.result_limit,
    b"error": lambda limits: MAX_ERROR_REPORT_BYTES,
}
_KINDS = (*_ANSWER_BOUNDS, b"call", b"log")
_LONGEST_KIND = max(map(len, _KINDS))
_FRAME_HEAD = 16  # an answer's kind and its newline
_I32 = ValType.i32()
_MASK32 = 0xFFFFFFFF
_WAIT_SLICE_S = 0.01

# WASI preview 1 poll_oneoff: a subscription is 48 bytes, an event 32.
_SUBSCRIPTION = struct.Struct("<QB7xIxxxxQQH6x")  # userdata, tag, clock id or fd, timeout ns, precision, flags
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags
_CLOCK, _FD_READ, _FD_WRITE = 0, 1, 2
_REALTIME, _MONOTONIC = 0, 1
_ABSTIME = 1
_EFAULT, _EINTR, _EINVAL = 21, 27, 28
_MAX_SUBSCRIPTIONS = 4096


@dataclass(frozen=True)
class PythonRun:
    """What one run produced: its result, as checked JSON text and as a value, or a failure; and its output."""

    result_json: str | None
    error: Failure | None
    stdout: str
    stderr: str
    duration_ms: float
    result: Any = None
    fuel_used: int | None = None

    @property
    def ok(self) -> bool:
        """True when the code returned a result."""
        return self.error is None


class _Guest:
    """The host side of one running instance: its deadline, its output and the frame it answered with."""

    def __init__(self, limits: Limits, deadline: float) -> None:
        self.limits = limits
        self.deadline = deadline
        self.origin_ns = time.perf_counter_ns()  # where the guest's monotonic clock starts (reset when WASI is set)
        self.output = {"stdout": bytearray(), "stderr": bytearray()}
        self.output_bytes = 0
        self.output_exceeded = False
        self.timed_out = False  # a wait reached the deadline
        self.answer: tuple[str, bytes] | None = None
        self.answer_refused: str | None = None

    def write(self, stream: str, data: bytes) -> int | None:
        """Keep guest output up to the output limit; fail the guest's write beyond it."""
        self.output_bytes += len(data)
        if self.output_bytes > self.limits.output_bytes:
            self.output_exceeded = True
            return -errno.EIO  # returned, not raised: wasmtime-py would print a raised error to the host's stdout
        self.output[stream] += data
        return None

    def text(self, stream: str) -> str:
        """Return what the guest wrote to `stream`, as text."""
        return self.output[stream].decode("utf-8", "replace")

    def host_call(self, name: str, payload: str) -> tuple[bool, str]:
        """Answer a host call: code run on its own has no orchestrator to ask."""
        return False, json.dumps(Failure(ErrorKind.UNKNOWN_CALL, f"no host call {name[:100]!r} outside a chain").to_json())

    def log(self, level: str, record: str) -> None:
        """Take a log record: code run on its own has nowhere else to send one than its stderr."""
        self.write("stderr", f"{level}: {record}\n".encode())


@contextmanager
def serving(guest: "_Guest") -> Iterator[None]:
    """Have this thread's host functions serve `guest` while the block runs: its instance runs on this thread."""
    _current.guest = guest
    try:
        yield
    finally:
        _current.guest = None


_current = threading.local()  # the instance running on this thread: the linker's host functions are shared
_linkers: dict[Engine, Linker] = {}
_linkers_lock = threading.Lock()


@dataclass
class Instance:
    """A fresh instance of the runtime in its own Store, and the host side that serves it."""

    store: Store
    exports: Any
    guest: _Guest

    @classmethod
    def start(
        cls,
        guest: _Guest,
        files: RuntimeFiles,
        *,
        mounts: Sequence[tuple[str, Path]] = (),
        scratch: tuple[str, Path] | None = None,
        image: "Image | None" = None,
    ) -> "Instance":
        """Instantiate the runtime in a fresh Store under the guest's limits, with `mounts` (guest path, host folder)
        read-only after the stdlib and `scratch` writable after them, and restore `image` before any guest code runs.

        Raise what instantiating raises (Trap, WasmtimeError, MemoryError); fuel, under a budget, is the whole budget after.
        """
        limits = guest.limits
        fuel = limits.fuel is not None
        engine = engines().engine(fuel)
        store = Store(engine)
        try:
            store.set_wasi(_wasi_config(guest, files, mounts, scratch))
            guest.origin_ns = time.perf_counter_ns()
            store.set_limits(memory_size=limits.memory_mb * MIB)
            store.set_epoch_deadline(max(1, math.ceil(limits.wall_time_s / EPOCH_TICK_S)))
            if fuel:
                store.set_fuel(WARM_UP_FUEL)
            exports = linker(engine).instantiate(store, load_module(engine, files, fuel)).exports(store)
            if image is not None:
                with serving(guest):
                    image.restore(store, exports, mount_paths(mounts, scratch))
            if fuel:
                store.set_fuel(limits.fuel)
        except BaseException:
            store.close()
            raise
        return cls(store, exports, guest)

    def run(self, code: bytes) -> int:
        """Run `code` in the instance's `__main__`, served from this thread; return `turn`'s status (0: no exception)."""
        with serving(self.guest):
            return turn(self.store, self.exports, code)

    def close(self) -> None:
        """Drop the Store, and the instance with it."""
        self.store.close()


def run_python(
    source: str,
    task_json: str,
    limits: Limits | None = None,
    *,
    entry: str = "main",
    filename: str = "main.py",
    files: RuntimeFiles | None = None,
    mounts: Sequence[tuple[str, Path]] = (),
    image: "Image | None" = None,
    compiling: Compiling = nullcontext,
) -> PythonRun:
    """Run `source` as module `filename` in a fresh instance and return what `entry(task)` returned, as JSON.

    The instance has `mounts` (guest path, host folder) read-only and starts from `image` when given. Never raises
    for guest misbehaviour: every way the code can fail becomes the run's error. The first run on a host downloads,
    verifies and compiles the runtime (minutes); `compiling()` wraps the compile.
    """
    limits = limits or Limits()
    files = files or runtime_files()
    fuel = limits.fuel is not None
    load_module(engines().engine(fuel), files, fuel, compiling=compiling)  # before the clock starts
    code = (HARNESS % (source, filename, entry, task_json)).encode()
    start = time.monotonic()
    guest = _Guest(limits, start + limits.wall_time_s)
    instance = None
    fuel_used = None
    error = None
    try:
        instance = Instance.start(guest, files, mounts=mounts, image=image)
        instance.run(code)
        if fuel:
            fuel_used = limits.fuel - instance.store.get_fuel()
    except (Trap, WasmtimeError) as trap:
        error = _trap_failure(trap, guest)
    except MemoryError as short:
        error = Failure(ErrorKind.MEMORY, f"memory limit of {limits.memory_mb} MiB reached ({short or 'no room for the code'})")
    finally:
        if instance is not None:
            instance.close()
    if guest.output_exceeded:  # whatever else happened, this is why
        error = Failure(ErrorKind.OUTPUT, f"output limit of {limits.output_bytes} bytes exceeded")
    elif guest.timed_out:
        error = Failure(ErrorKind.TIMEOUT, f"wall-time limit of {limits.wall_time_s:g} s exceeded (while waiting)")
    result_json, result = None, None
    if error is None:
        error, result_json, result = _answer(guest)
    return PythonRun(result_json, error, guest.text("stdout"), guest.text("stderr"), ms_since(start), result, fuel_used)


def turn(store: Store, exports: Any, code: bytes) -> int:
    """Run `code` in the instance's `__main__`: written into memory the guest allocates, then its `turn` export.

    Return the export's status: 0, 1 when the code raised (its traceback went to stderr), or SystemExit's code.
    Raise MemoryError when the guest has no room for the code, and what the call raises.
    """
    at = exports["host_alloc"](store, len(code)) & _MASK32
    if not at:
        raise MemoryError
    exports["memory"].write(store, code, at)
    return exports["turn"](store, at, len(code))


def mount_paths(mounts: Sequence[tuple[str, Path]], scratch: tuple[str, Path] | None) -> tuple[str, ...]:
    """Return the guest paths an instance started with `mounts` and `scratch` has folders at, in the order they are mounted."""
    return (STDLIB_MOUNT, *(guest_path for guest_path, _ in mounts), *(scratch[:1] if scratch else ()))


def _wasi_config(guest: _Guest, files: RuntimeFiles, mounts: Sequence[tuple[str, Path]], scratch: tuple[str, Path] | None) -> WasiConfig:
    """Deny by default: no arguments, no environment, no network, no folders but the stdlib zip's and `mounts`, read-only,
    and `scratch`, writable."""
    wasi = WasiConfig()
    wasi.stdout_custom = lambda data: guest.write("stdout", bytes(data))
    wasi.stderr_custom = lambda data: guest.write("stderr", bytes(data))
    wasi.preopen_dir(str(files.stdlib), STDLIB_MOUNT, fs_mutable=False)
    for guest_path, host_folder in mounts:
        wasi.preopen_dir(str(host_folder), guest_path, fs_mutable=False)
    if scratch is not None:
        wasi.preopen_dir(str(scratch[1]), scratch[0], fs_mutable=True)
    return wasi


def _answer(guest: _Guest) -> tuple[Failure | None, str | None, Any]:
    """Read the frame the guest answered with: (failure, result JSON, result)."""
    limits = guest.limits
    if guest.answer_refused:
        return Failure(ErrorKind.NOT_SERIALIZABLE, guest.answer_refused), None, None
    if guest.answer is None:
        return Failure(ErrorKind.PROTOCOL_ERROR, "the code ended without sending a result"), None, None
    kind, payload = guest.answer
    text = payload.decode("utf-8", "replace")
    if kind == "result":
        try:
            return None, text, guest_json.loads(text, max_bytes=limits.result_limit, max_depth=limits.json_depth, max_items=limits.json_items)
        except guest_json.Refused as refused:
            return refused_result(refused), None, None
    return reported_failure(text, limits), None, None


def _trap_failure(trap: Exception, guest: _Guest) -> Failure:
    limits = guest.limits
    if isinstance(trap, ExitTrap):
        return Failure(ErrorKind.EXIT, f"the code exited the sandbox (status {trap.code})")
    code = trap.trap_code if isinstance(trap, Trap) else None
    if code == TrapCode.INTERRUPT:
        return Failure(ErrorKind.TIMEOUT, f"wall-time limit of {limits.wall_time_s:g} s exceeded")
    if code == TrapCode.OUT_OF_FUEL:
        return Failure(ErrorKind.FUEL, f"fuel budget of {limits.fuel} exhausted")
    if code == TrapCode.STACK_OVERFLOW:
        return Failure(ErrorKind.STACK, "call stack exhausted (recursion too deep)")
    text = str(trap)
    if "memory minimum size" in text or "memory limit" in text:
        return Failure(ErrorKind.MEMORY, f"memory limit of {limits.memory_mb} MiB is below what the runtime needs to start")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("wasm trap")), lines[0] if lines else "the guest stopped")
    return Failure(ErrorKind.TRAP, reason)


def linker(engine: Engine) -> Linker:
    """Return the engine's linker: WASI preview 1, with `poll_oneoff` bounded by the deadline, and the door."""
    with _linkers_lock:
        if engine not in _linkers:
            made = Linker(engine)
            made.define_wasi()
            made.allow_shadowing = True
            four = FuncType([_I32] * 4, [_I32])
            made.define_func("wasi_snapshot_preview1", "poll_oneoff", four, _poll_oneoff, access_caller=True)
            made.define_func("host", "call", four, _host_call, access_caller=True)
            _linkers[engine] = made
        return _linkers[engine]


def _host_call(caller: Caller, at: int, length: int, answer_at: int, answer_length_at: int) -> int:
    """host.call(frame, frame length, where to put the answer's address, where to put its length) -> 0 or an error.

    A frame is "<kind>\n<payload>": "result" or "error" answers the run (once); "call" and "log" are a component's
    host imports, "call\n<name>\n<payload>" answered "ok\n<json>" or "err\n<json>", "log\n<level>\n<fields>".
    """
    guest: _Guest | None = getattr(_current, "guest", None)
    if guest is None:
        return NO_HOST
    at, length, answer_at, answer_length_at = (value & _MASK32 for value in (at, length, answer_at, answer_length_at))
    memory = caller.get("memory")
    if at + length > memory.data_len(caller):
        return HOST_FAULT
    if guest.answer is not None or guest.answer_refused is not None:
        return HOST_FAULT  # one answer per run: the first one sent stands, and nothing comes after it
    kind = bytes(memory.read(caller, at, at + min(length, _LONGEST_KIND + 1))).partition(b"\n")[0]
    if kind not in _KINDS:
        return HOST_FAULT
    if kind in _ANSWER_BOUNDS and length > _ANSWER_BOUNDS[kind](guest.limits) + _FRAME_HEAD:  # refused before the host copies it
        if kind == b"result":
            guest.answer_refused = f"result refused: larger than {guest.limits.result_limit} bytes ([limits] result_bytes in agent.toml)"
        return HOST_FAULT
    payload = bytes(memory.read(caller, at + len(kind) + 1, at + length))
    if kind in (b"result", b"error"):
        guest.answer = (kind.decode(), payload)
        return _reply(caller, b"", answer_at, answer_length_at)
    try:
        name, _, text = (part.decode() for part in payload.partition(b"\n"))
    except UnicodeDecodeError:
        return HOST_FAULT
    if kind == b"log":
        guest.log(name, text)
        return _reply(caller, b"", answer_at, answer_length_at)
    ok, answer = guest.host_call(name, text)
    return _reply(caller, (b"ok\n" if ok else b"err\n") + answer.encode(), answer_at, answer_length_at)


def _reply(caller: Caller, answer: bytes, answer_at: int, answer_length_at: int) -> int:
    """Put `answer` into memory the guest allocates, and its address and length where the guest asked."""
    memory = caller.get("memory")
    if answer_at + 4 > memory.data_len(caller) or answer_length_at + 4 > memory.data_len(caller):
        return HOST_FAULT
    at = caller.get("host_alloc")(caller, max(1, len(answer))) & _MASK32
    if not at or at + len(answer) > memory.data_len(caller):
        return HOST_FAULT
    memory.write(caller, answer, at)
    memory.write(caller, struct.pack("<I", at), answer_at)
    memory.write(caller, struct.pack("<I", len(answer)), answer_length_at)
    return 0


def _poll_oneoff(caller: Caller, subscriptions_at: int, events_at: int, count: int, written_at: int) -> int:
    """poll_oneoff that waits no longer than the guest's deadline; descriptors are ready at once, as for files.

    Past the deadline it answers EINTR, which CPython retries (PEP 475), until the epoch deadline stops the guest;
    the run is a timeout even if the guest gets to return first.
    """
    guest: _Guest | None = getattr(_current, "guest", None)
    subscriptions_at, events_at, count, written_at = (value & _MASK32 for value in (subscriptions_at, events_at, count, written_at))
    if guest is None or count == 0 or count > _MAX_SUBSCRIPTIONS:
        return _EINVAL
    memory = caller.get("memory")
    size = memory.data_len(caller)
    if subscriptions_at + 48 * count > size or events_at + 32 * count > size or written_at + 4 > size:
        return _EFAULT
    raw = bytes(memory.read(caller, subscriptions_at, subscriptions_at + 48 * count))
    ready, clocks = [], []
    for userdata, tag, which, timeout, _precision, flags in _SUBSCRIPTION.iter_unpack(raw):
        if tag == _CLOCK:
            if which not in (_REALTIME, _MONOTONIC):
                return _EINVAL
            if flags & _ABSTIME:
                timeout -= time.time_ns() if which == _REALTIME else time.perf_counter_ns() - guest.origin_ns
            clocks.append((max(0, timeout), userdata))
        elif tag in (_FD_READ, _FD_WRITE):
            ready.append(_EVENT.pack(userdata, 0, tag, 0, 0))
        else:
            return _EINVAL
    if not ready:
        wait_ns = min(timeout for timeout, _ in clocks)
        _wait(wait_ns / 1e9, guest.deadline)
        if time.monotonic() >= guest.deadline:
            guest.timed_out = True
            return _EINTR
        ready = [_EVENT.pack(userdata, 0, _CLOCK, 0, 0) for timeout, userdata in clocks if timeout <= wait_ns]
    memory.write(caller, b"".join(ready), events_at)
    memory.write(caller, struct.pack("<I", len(ready)), written_at)
    return 0


def _wait(seconds: float, deadline: float) -> None:
    """Sleep `seconds`, in slices, but never past `deadline`."""
    until = min(time.monotonic() + seconds, deadline)
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, _WAIT_SLICE_S))

