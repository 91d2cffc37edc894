"""One invocation of an agent in a fresh sandbox, under its limits, with a watchdog for its wall time."""

import errno
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmtime import ExitTrap, Trap, WasmtimeError
from wasmtime.component import Variant

from wasm_agents.errors import HOST_ONLY, ErrorKind, Failure
from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox import guest_json
from wasm_agents.sandbox.engine import EPOCH_TICK_S, current
from wasm_agents.sandbox.guests import Guests, process_guests
from wasm_agents.sandbox.pool import NotPrepared, Sandbox
from wasm_agents.sandbox.scratch import unwatch, watch

# A guest's error report, and the parts of it that results and events carry.
MAX_ERROR_REPORT_BYTES = 16 << 20
MAX_ERROR_TEXT = 64 << 10

# How long past its deadline the host waits for a guest blocked in a WASI call before giving up on it.
WATCHDOG_GRACE_S = 0.1

# A frame of a wasm backtrace ("  3: 0x12c256f - module.wasm!function"): its function, and the frames of the
# language runtimes around an abort (Rust's panic machinery), which say nothing about why.
_BACKTRACE_FRAME = re.compile(r"^\s*\d+: (?:0x[0-9a-f]+ - )?(?:[^!\n]*!)?(.+)$", re.MULTILINE)
_RUNTIME_FRAMES = ("std::", "core::", "alloc::", "__rustc::", "pyo3::")

# The limit behind each trap, by wasmtime's own trap message. A component call's error carries no trap code
# (wasmtime's C API gives components a wasmtime_error_t, not a wasm_trap_t): its "wasm trap: ..." line is all there is.
_TRAP_LIMITS = {
    "wasm trap: interrupt": ErrorKind.TIMEOUT,
    "wasm trap: all fuel consumed by WebAssembly": ErrorKind.FUEL,
    "wasm trap: call stack exhausted": ErrorKind.STACK,
}


@dataclass(frozen=True)
class Outcome:
    """What one invocation produced: its result, as checked JSON text and as a value, or a failure."""

    result_json: str | None
    error: Failure | None
    duration_ms: float
    result: Any = None
    fuel_used: int | None = None
    abandoned: bool = False  # the guest is still blocked in a WASI call, and lingers until it returns

    @property
    def ok(self) -> bool:
        """True when the agent returned a result."""
        return self.error is None


class _Abandoned(Exception):
    """The caller stopped waiting before the invocation could start."""


class _Stopped(Exception):
    """The process stopped its guests (Guests.stop) before this one could run."""


STOPPED = "stopped before its deadline: the process is exiting"


class OutputLimitExceeded(Exception):
    """Raised in a host import to trap a guest that went past its output limit."""


HostCall = Callable[[str, str], tuple[bool, str]]
GuestLog = Callable[[str, dict[str, Any]], None]
GuestOutput = Callable[[str, str], None]


class Invocation:
    """The host side of one running guest: its host calls, logs, output and limits."""

    def __init__(
        self,
        limits: Limits,
        host_call: HostCall,
        on_log: GuestLog,
        on_output: GuestOutput,
        guests: Guests | None = None,
        caller: "Invocation | None" = None,
    ) -> None:
        self.limits = limits
        self.caller = caller  # the invocation whose delegation this is, if any
        self.spent: list[Sandbox] = []  # sandboxes of its delegates, closed with its own
        self.guests = guests or process_guests()
        self._host_call = host_call
        self._on_log = on_log
        self._on_output = on_output
        self.output_bytes = 0
        self.output_exceeded = False
        self.abandoned = False
        self.turn = self.guests.turn()
        self.started = threading.Event()  # set when the guest has its turn, and its own deadline
        self.deadline = 0.0
        self._partial = {"stdout": "", "stderr": ""}  # output after the last newline, per stream

    def host_call(self, name: str, payload: str) -> tuple[bool, str]:
        """Answer a host call from the guest; a failure of the host's own code fails only this call."""
        if self.abandoned:
            return False, json.dumps(Failure(ErrorKind.TIMEOUT, "invocation already ended by its wall-time limit").to_json())
        self.turn.give_back()  # a guest waiting for its delegate does not run: let the delegate run instead
        try:
            return self._host_call(name, payload)
        except Exception as error:  # noqa: BLE001 - whatever the guest sent, the host must answer
            return False, json.dumps(Failure(ErrorKind.HOST_ERROR, f"{type(error).__name__}: {error}").to_json())
        finally:
            self.turn.take()

    def log(self, level: str, record: str) -> None:
        """Forward a guest log record, whatever the guest sent; records count against the output limit."""
        self.output_bytes += len(record)
        if self.output_bytes > self.limits.output_bytes:
            self.output_exceeded = True
            raise OutputLimitExceeded  # traps the guest: a log call cannot fail the way a write can
        if self.abandoned:
            return
        try:
            fields = guest_json.loads(record, max_bytes=self.limits.output_bytes, max_depth=self.limits.json_depth, max_items=self.limits.json_items)
        except guest_json.Refused:
            fields = {"message": record}
        if not isinstance(fields, dict):
            fields = {"message": str(fields)}
        self._on_log(level, fields)

    def output(self, stream: str, data: bytes) -> int | None:
        """Capture guest stdout/stderr up to the output limit; fail the guest's write beyond it."""
        self.output_bytes += len(data)
        if self.output_bytes > self.limits.output_bytes:
            self.output_exceeded = True
            return -errno.EIO  # returned, not raised: wasmtime-py would print a raised error to the host's stdout
        if not self.abandoned:
            *lines, self._partial[stream] = (self._partial[stream] + data.decode("utf-8", "replace")).split("\n")
            for line in lines:
                self._on_output(stream, line)
        return None

    def flush_output(self) -> None:
        """Emit what the guest wrote after its last newline."""
        for stream, rest in self._partial.items():
            if rest and not self.abandoned:
                self._on_output(stream, rest)
            self._partial[stream] = ""


def invoke(take: Callable[[], Sandbox], invocation: Invocation, config_json: str, caller_deadline: float) -> Outcome:
    """Run the agent once in the fresh sandbox `take()` gives, then drop that sandbox; return the outcome.

    The agent's own wall time starts when it gets its turn to run (see Guests): a guest queued behind others
    loses none of it. Until then only `caller_deadline`, which also bounds the agent's own, runs.
    Never raises for guest misbehaviour: every way a guest can fail becomes the outcome's error.
    """
    start = time.monotonic()
    guests = invocation.guests
    invocation.deadline = caller_deadline
    box: list[Outcome] = []
    done = threading.Event()

    def job() -> None:
        sandbox: list[Sandbox] = []
        try:
            box.append(_run(take, sandbox, invocation, config_json, caller_deadline, start))
        finally:
            used = [*sandbox, *invocation.spent]
            with guests.lock:
                done.set()
                guests.lingering -= invocation.abandoned
                # A delegate whose caller still waits for it leaves its sandboxes to the caller's thread: freeing a
                # store (~0.4 ms, munmap) while the caller's guest runs again would contend with it for the memory map.
                handed = invocation.caller is not None and not invocation.abandoned
                if handed:
                    invocation.caller.spent.extend(used)
            if not handed:
                # After the caller has its outcome, on this thread, so disposal keeps pace with invocations
                # however many run at once.
                for spent in used:
                    spent.close()
            with guests.ended:  # its guest has ended and its scratch folder is gone or left to the caller's
                guests.active.discard(invocation)
                guests.ended.notify_all()

    guests.workers.submit(job)
    started = invocation.started.wait(max(0.0, caller_deadline - time.monotonic()) + WATCHDOG_GRACE_S)
    if not started or not done.wait(max(0.0, invocation.deadline - time.monotonic()) + WATCHDOG_GRACE_S):
        # The guest is blocked inside a WASI call (sleep, poll) that epoch deadlines cannot interrupt, or never
        # got a turn: stop waiting for it. Its thread ends by itself once the call returns, at the next epoch check.
        with guests.lock:
            if not done.is_set():
                invocation.abandoned = True
                guests.lingering += 1
    if not invocation.abandoned:
        return box[0]
    # A guest asleep in WASI uses no CPU: its permit goes back now, or a few sleepers would starve every chain.
    invocation.turn.give_back()
    if started:
        message = f"wall-time limit of {invocation.limits.wall_time_s:g} s exceeded (blocked in a host call)"
    else:
        message = "the caller's wall time ran out before the agent had a turn to run (every guest slot was busy)"
    return Outcome(None, Failure(ErrorKind.TIMEOUT, message), ms_since(start), abandoned=True)


def _run(
    take: Callable[[], Sandbox], used: list[Sandbox], invocation: Invocation, config_json: str, caller_deadline: float, start: float
) -> Outcome:
    limits = invocation.limits
    guests = invocation.guests
    sandbox = None
    quota = None
    fuel_used = None
    current.invocation = invocation
    invocation.turn.take()
    deadline = invocation.deadline = min(time.monotonic() + limits.wall_time_s, caller_deadline)
    invocation.started.set()
    try:
        if invocation.abandoned:  # its deadline passed while it waited for a turn: never start it
            raise _Abandoned
        with guests.lock:
            if guests.stopped:
                raise _Stopped
            guests.active.add(invocation)
        sandbox = take()
        used.append(sandbox)
        if sandbox.scratch:
            quota = watch(Path(sandbox.scratch), sandbox.scratch_bytes)
        sandbox.output.to = invocation.output
        store = sandbox.store
        if limits.fuel is not None:
            store.set_fuel(limits.fuel)
        store.set_epoch_deadline(max(1, math.ceil((deadline - time.monotonic()) / EPOCH_TICK_S)))
        if guests.stopped:  # since it joined `active`: the epoch may have moved before this store had its deadline
            raise _Stopped
        answer = sandbox.call(config_json)
        error = _guest_error(answer, invocation)
        result_json = None if error else answer.payload
    except (Trap, WasmtimeError, OutputLimitExceeded) as trap:
        result_json, error = None, _trap_failure(trap, invocation)
        if guests.stopped and error.type == ErrorKind.TIMEOUT:
            error = Failure(ErrorKind.TIMEOUT, STOPPED)
    except NotPrepared as failed:
        result_json, error = None, Failure(ErrorKind.TRAP, str(failed))
    except MemoryError as refused:  # a fresh sandbox that cannot even start within the agent's memory limit
        result_json, error = None, Failure(ErrorKind.MEMORY, str(refused) or f"memory limit of {limits.memory_mb} MiB reached")
    except _Abandoned:
        result_json, error = None, Failure(ErrorKind.TIMEOUT, "wall-time limit exceeded before the agent could start")
    except _Stopped:
        result_json, error = None, Failure(ErrorKind.TIMEOUT, STOPPED)
    except Exception as failure:  # noqa: BLE001 - a host bug ends this invocation, never the host
        result_json, error = None, Failure(ErrorKind.HOST_ERROR, f"{type(failure).__name__}: {failure}")
    finally:
        invocation.turn.give_back()
        current.invocation = None
        invocation.flush_output()
        if quota is not None:
            unwatch(quota)  # and measured once more: the guest may have written since the last poll
    if quota is not None and quota.exceeded:  # whatever else happened, this is why
        result_json, error = None, Failure(
            ErrorKind.SCRATCH, f"scratch limit of {quota.limit // MIB} MiB exceeded ([files] scratch_mb in agent.toml)"
        )
    if sandbox is not None and limits.fuel is not None:
        fuel_used = limits.fuel - sandbox.store.get_fuel()
    result = None
    if result_json is not None:  # checked after the guest's turn: decoding is the host's work, not the guest's
        try:
            result = guest_json.loads(result_json, max_bytes=limits.result_limit, max_depth=limits.json_depth, max_items=limits.json_items)
        except guest_json.Refused as refused:
            result_json, error = None, refused_result(refused)
    return Outcome(result_json, error, ms_since(start), result=result, fuel_used=fuel_used)


def _guest_error(answer: Any, invocation: Invocation) -> Failure | None:
    limits = invocation.limits
    if invocation.output_exceeded:
        return Failure(ErrorKind.OUTPUT, f"output limit of {limits.output_bytes} bytes exceeded")
    if not isinstance(answer, Variant) or answer.tag not in ("ok", "err"):
        return Failure(ErrorKind.PROTOCOL_ERROR, "the component's run export returned an unexpected value")
    if answer.tag == "ok":
        return None
    return reported_failure(answer.payload, limits)


def reported_failure(report: str, limits: Limits) -> Failure:
    """The failure a guest reported as JSON {"type", "message", "traceback"}: read within bounds, texts clipped, host
    error names refused, a MemoryError told as the memory limit."""
    try:
        error = guest_json.loads(report, max_bytes=MAX_ERROR_REPORT_BYTES, max_depth=limits.json_depth, max_items=limits.json_items)
        if not isinstance(error, dict):
            raise guest_json.Refused("not an object")
    except guest_json.Refused as refused:
        return Failure(ErrorKind.PROTOCOL_ERROR, f"malformed error from the guest ({refused}): {report[:200]!r}")
    kind = _clipped(str(error.get("type", "Error")), 200)
    message, trace = _clipped(str(error.get("message", "")), MAX_ERROR_TEXT), _clipped(str(error.get("traceback", "")), MAX_ERROR_TEXT)
    if kind in HOST_ONLY:  # only the host may say a limit was hit or a policy refused
        return Failure(ErrorKind.RESERVED_ERROR_NAME, f"the agent raised an exception named like a host error ({kind}): {message}", trace)
    if kind == "MemoryError":
        return Failure(ErrorKind.MEMORY, f"memory limit of {limits.memory_mb} MiB reached (MemoryError)", trace)
    return Failure(kind, message, trace)


def refused_result(refused: guest_json.Refused) -> Failure:
    """The failure of a result the host refused to take (see guest_json.loads)."""
    if refused.undecodable:
        return Failure(ErrorKind.NOT_SERIALIZABLE, "result nested too deeply to decode")
    return Failure(ErrorKind.NOT_SERIALIZABLE, f"result refused: {refused}{refused.hint('result_bytes')}")


def _clipped(text: str, most: int) -> str:
    """`text`, cut to `most` characters: errors go into results and events whole."""
    return text if len(text) <= most else f"{text[:most]}... ({len(text) - most} more characters)"


def _trap_failure(trap: Exception, invocation: Invocation) -> Failure:
    limits = invocation.limits
    if invocation.output_exceeded:
        return Failure(ErrorKind.OUTPUT, f"output limit of {limits.output_bytes} bytes exceeded")
    if isinstance(trap, ExitTrap):
        return Failure(ErrorKind.EXIT, "the agent exited the sandbox (os._exit)")
    text = str(trap)
    reason = next((line.strip() for line in text.splitlines() if line.strip().startswith("wasm trap")), None)
    kind = _TRAP_LIMITS.get(reason)
    if kind == ErrorKind.TIMEOUT:
        return Failure(kind, f"wall-time limit of {limits.wall_time_s:g} s exceeded")
    if kind == ErrorKind.FUEL:
        return Failure(kind, f"fuel budget of {limits.fuel} exhausted")
    if kind == ErrorKind.STACK:
        return Failure(kind, "call stack exhausted (recursion too deep)")
    frames = _BACKTRACE_FRAME.findall(text)
    where = [frame for frame in frames if not frame.startswith(_RUNTIME_FRAMES)][:3]
    message = reason or "the guest stopped"
    if where:
        message += f" (the guest aborted in {' < '.join(where)})"
    if "wit_dylib_pop_string" in frames:
        message += ": a string it passed to the host is not valid Unicode"
    return Failure(ErrorKind.TRAP, message)


def ms_since(start: float) -> float:
    """Milliseconds since the time.monotonic() `start`, as results and events give them."""
    return round((time.monotonic() - start) * 1000, 3)
