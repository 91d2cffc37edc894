"""The process-wide wasmtime engines: epoch interruption always, fuel only for agents with a fuel budget."""

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from packaging.version import Version
from wasmtime import Config, Engine
from wasmtime.component import Linker, Variant

from wasm_agents.errors import WasmAgentsError
from wasm_agents.sandbox.wasmtime_version import wasmtime_version

EPOCH_TICK_S = 0.002
# The bound on making a sandbox ahead of its task (instantiation, then the warm-up call or an image's restore): only
# the harness runs then, but the agent's module-level code ran before it and may have changed what the harness calls.
PREPARE_S = 2.0
PREPARE_TICKS = round(PREPARE_S / EPOCH_TICK_S)
ADVANCE_STEP = 1000  # ticks between two looks at the clock in advance()

# The oldest wasmtime agents run on, and the one fixing the Windows-only escape GHSA-f2pq-268w-886c
# (no Python release of it exists yet); see docs/SECURITY.md, "wasmtime advisories".
MIN_WASMTIME = Version("50.0.1")
MIN_WASMTIME_WINDOWS = Version("50.0.3")


class EngineSet:
    """One engine per configuration (with or without fuel), each with one linker, all sharing one epoch ticker."""

    def __init__(self) -> None:
        check_wasmtime(wasmtime_version(), sys.platform)
        self._engines: dict[bool, Engine] = {}
        self._linkers: dict[bool, Linker] = {}
        self._lock = threading.Lock()
        # Lives as long as the process: engines are process-wide and never released (the CLI leaves by os._exit).
        threading.Thread(target=self._tick, name="wasm-agents-epoch", daemon=True).start()

    def engine(self, fuel: bool) -> Engine:
        """Return the engine for agents with (`fuel=True`) or without a fuel budget."""
        with self._lock:
            if fuel not in self._engines:
                self._engines[fuel] = Engine(engine_config(fuel))
            return self._engines[fuel]

    def linker(self, fuel: bool) -> Linker:
        """Return the engine's linker: WASI p2 plus the host imports of the agent world."""
        engine = self.engine(fuel)
        with self._lock:
            if fuel not in self._linkers:
                self._linkers[fuel] = _make_linker(engine)
            return self._linkers[fuel]

    def advance(self, fuel: bool, ticks: int, until: float) -> None:
        """Move the epoch of the engine for agents with (`fuel=True`) or without a fuel budget `ticks` ahead now, or as
        far as it gets by the time.monotonic() `until`."""
        increment = self.engine(fuel).increment_epoch
        for done in range(0, ticks, ADVANCE_STEP):
            for _ in range(min(ADVANCE_STEP, ticks - done)):
                increment()
            if time.monotonic() > until:
                return

    def _tick(self) -> None:
        # Catch up on ticks missed while this thread waited for the GIL, so epochs track real time.
        start, ticks = time.monotonic(), 0
        while True:
            time.sleep(EPOCH_TICK_S)
            due = int((time.monotonic() - start) / EPOCH_TICK_S)
            with self._lock:
                engines = list(self._engines.values())
            for _ in range(due - ticks):
                for engine in engines:
                    engine.increment_epoch()
            ticks = due


def check_wasmtime(installed: str, platform: str) -> None:
    """Refuse a wasmtime with a published sandbox escape that affects this platform."""
    if Version(installed) < MIN_WASMTIME:
        raise WasmAgentsError(
            f"wasmtime {installed} is older than {MIN_WASMTIME}, the oldest release this project runs agents on "
            f"(earlier ones have published sandbox escapes): pip install 'wasmtime>={MIN_WASMTIME}'"
        )
    if platform == "win32" and Version(installed) < MIN_WASMTIME_WINDOWS:
        raise WasmAgentsError(
            f"wasmtime {installed} has a WASI filesystem escape on Windows (GHSA-f2pq-268w-886c, fixed in "
            f"{MIN_WASMTIME_WINDOWS}): pip install 'wasmtime>={MIN_WASMTIME_WINDOWS}' or run on Linux or macOS"
        )


def engine_config(fuel: bool) -> Config:
    """Return a fresh engine Config; a compiled component only loads into an engine with the same one."""
    config = Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    return config


def config_fingerprint(fuel: bool) -> str:
    """Describe the engine configuration for compile-cache keys."""
    return f"epoch=1;fuel={int(fuel)}"


# The host imports dispatch to whichever invocation is running on the calling thread:
# every invocation runs on a thread of its own, so a thread-local is exact.
current = threading.local()


class _WarmUpHost:
    """The host of a warm-up call: answers every host call with null and drops every log record, acting on none."""

    def host_call(self, name: str, payload: str) -> tuple[bool, str]:
        return True, "null"

    def log(self, level: str, record: str) -> None:
        return None


WARM_UP_HOST = _WarmUpHost()


@contextmanager
def answering(host: object) -> Iterator[None]:
    """Answer the host imports called on this thread with `host` (an Invocation, or WARM_UP_HOST) until the block ends."""
    previous = getattr(current, "invocation", None)
    current.invocation = host
    try:
        yield
    finally:
        current.invocation = previous


def _host_call(store, name: str, payload: str):
    ok, answer = current.invocation.host_call(name, payload)
    return Variant("ok" if ok else "err", answer)


def _log(store, level: str, record: str) -> None:
    current.invocation.log(level, record)


def _make_linker(engine: Engine) -> Linker:
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        root.add_func("host-call", _host_call)
        root.add_func("log", _log)
    return linker


@cache
def engines() -> EngineSet:
    """Return the process's engine set, created on first use.

    Process-wide on purpose: a compiled component belongs to the engine that compiled it, every Store of an
    engine shares its code pages, and one ticker thread serves all; a Runner per dist must not multiply them.
    """
    return EngineSet()
