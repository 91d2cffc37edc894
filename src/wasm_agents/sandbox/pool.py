"""Fresh sandboxes made ahead of demand: instantiated and warmed, each used for exactly one invocation.

Instantiating a component and its first call cost ~3 ms, most of it copy-on-write page faults of
the interpreter's snapshot. A warm-up call that runs only the harness (never agent code) pays that
off the critical path; the invocation then gets an instance no agent has run in.
"""

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from wasmtime import Store, Trap, WasiConfig, WasmtimeError
from wasmtime.component import Component, Func, Variant

from wasm_agents.artifacts import AgentFolders
from wasm_agents.paths import cache_dir
from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox import CODE_MOUNT, DATA_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT, SCRATCH_MOUNT, STDLIB_MOUNT, WARM_UP
from wasm_agents.sandbox.engine import PREPARE_TICKS, WARM_UP_HOST, EngineSet, answering
from wasm_agents.sandbox.scratch import new_scratch, remove_tree

WARM_UP_FUEL = 1_000_000_000


class NotPrepared(Exception):
    """A fresh instance could not be made ready for its task, because of what the agent's module-level code changed."""


class GuestOutput:
    """Routes a sandbox's stdout/stderr to the invocation that took it; nowhere before (the warm-up writes none)."""

    def __init__(self) -> None:
        self.to: Callable[[str, bytes], int | None] | None = None

    def write(self, stream: str, data: bytes) -> int | None:
        """Pass a guest write on; its return value is what the guest's write returns."""
        return self.to(stream, data) if self.to else None


@dataclass
class Sandbox:
    """One fresh instance in its own Store, ready for exactly one invocation: `call(input)` runs it and gives its answer.

    The answer is the WIT result of the `run` export, whatever the runtime: a Variant "ok" (the result's JSON) or
    "err" (the error report's JSON).
    """

    store: Store
    call: Callable[[str], Variant]
    output: GuestOutput
    scratch: str | None
    scratch_bytes: int = 0  # what the scratch folder may hold

    def close(self) -> None:
        """Drop the store (and the instance with it) and remove the scratch folder."""
        del self.store, self.call
        if self.scratch:
            remove_tree(Path(self.scratch))


@dataclass(frozen=True)
class Mounts:
    """Host folders an agent may see: read-only folders as (guest path, host folder), and the MiB of its scratch folder, if it has one."""

    read_only: tuple[tuple[str, str], ...] = ()
    scratch_mb: int | None = None

    @classmethod
    def of(cls, folders: AgentFolders, scratch_mb: int | None) -> "Mounts":
        """The folders an agent's fresh instances see, read-only: the paths its snapshot imported from, and /data."""
        mounted = {STDLIB_MOUNT: folders.stdlib, SANDBOX_MOUNT: folders.sandbox, CODE_MOUNT: folders.code, DEPS_MOUNT: folders.deps}
        if folders.data is not None:
            mounted[DATA_MOUNT] = folders.data
        return cls.at(mounted, scratch_mb)

    @classmethod
    def at(cls, mounted: dict[str, Path | None], scratch_mb: int | None) -> "Mounts":
        """Mount each host folder of `mounted` read-only at its guest path, in that order; an absent one empty."""
        # A folder without files is still mounted, empty: the snapshot's sys.path names it, the agent its /data.
        empty = cache_dir("empty")
        return cls(tuple((guest, str(host if host is not None and host.is_dir() else empty)) for guest, host in mounted.items()), scratch_mb)


@dataclass(frozen=True)
class SandboxMaker:
    """What fresh sandboxes of one agent are made of: its compiled component, its limits and its mounts."""

    engines: EngineSet
    component: Component
    limits: Limits
    mounts: Mounts
    warm_up_failed: threading.Event = field(default_factory=threading.Event, compare=False)

    def make(self, warm_up: bool = True) -> Sandbox:
        """Instantiate the component in a fresh Store under the limits and, with `warm_up`, warm it up.

        The warm-up only takes the instance's first page faults ahead of its task: worth it for a sandbox made ahead
        of demand, not for one its task is already waiting for (which would pay them twice over). Under a fuel budget
        it always runs: the harness's first-call work would otherwise be charged to the agent, and fuel must count the
        same wherever the sandbox came from.
        """
        fuel = self.limits.fuel is not None
        sandbox = self._instantiate(fuel)
        if (warm_up or fuel) and not self.warm_up_failed.is_set():
            try:
                with answering(WARM_UP_HOST):
                    sandbox.call(WARM_UP)
            except (Trap, WasmtimeError):
                # The agent's module-level code can change what the warm-up calls, so it may fail or not end within
                # PREPARE_S: this agent's instances are no longer warmed up, and its own calls meet its limits.
                self.warm_up_failed.set()
                sandbox.close()
                sandbox = self._instantiate(fuel)
        return sandbox

    def _instantiate(self, fuel: bool) -> Sandbox:
        """A fresh instance in its own Store, under the limits and the bound on preparing it."""
        store = Store(self.engines.engine(fuel))
        output = GuestOutput()
        scratch = str(new_scratch()) if self.mounts.scratch_mb else None
        try:
            store.set_wasi(wasi_config(output, self.mounts.read_only, scratch))
            store.set_limits(memory_size=self.limits.memory_mb * MIB)
            store.set_epoch_deadline(PREPARE_TICKS)
            if fuel:
                store.set_fuel(WARM_UP_FUEL)
            run = self.engines.linker(fuel).instantiate(store, self.component).get_func(store, "run")
        except BaseException:
            if scratch:
                remove_tree(Path(scratch))
            raise
        return Sandbox(store, partial(_call, store, run), output, scratch, (self.mounts.scratch_mb or 0) * MIB)


def _call(store: Store, run: Func, input: str) -> Variant:
    """Call a component's `run` export and let it free what it returned."""
    answer = run(store, input)
    run.post_return(store)
    return answer


class WarmPool:
    """Keeps up to `size` prepared sandboxes of each agent; a background thread refills after each take."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ready: dict[str, queue.SimpleQueue[Sandbox]] = {}
        self._makers: dict[str, Callable[[bool], Sandbox]] = {}
        self._wanted: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # agents to make a sandbox for
        self._stock: dict[str, int] = {}  # per agent: ready plus being made
        self._lock = threading.Lock()
        self._filler = threading.Thread(target=self._fill, name="wasm-agents-warm-pool", daemon=True)
        self._filler.start()

    def add(self, name: str, make: Callable[[bool], Sandbox]) -> None:
        """Register how to make sandboxes for agent `name` (`make(warm_up)`) and start filling its share of the pool."""
        self._ready[name] = queue.SimpleQueue()
        self._makers[name] = make
        self._stock[name] = 0
        for _ in range(self.size):
            self.refill(name)

    def take(self, name: str) -> Sandbox:
        """Return a prepared sandbox of `name`, made now if none is ready; call `refill(name)` once done with it."""
        try:
            sandbox = self._ready[name].get_nowait()
        except queue.Empty:
            return self._makers[name](False)
        with self._lock:
            self._stock[name] -= 1
        return sandbox

    def refill(self, name: str) -> None:
        """Top the pool of `name` up: after an invocation, so making a sandbox never slows that invocation."""
        with self._lock:
            if self._stock[name] >= self.size:
                return
            self._stock[name] += 1
        self._wanted.put(name)

    def close(self) -> None:
        """Stop refilling and drop every sandbox not taken."""
        self._wanted.put(None)
        self._filler.join()
        for ready in self._ready.values():
            while not ready.empty():
                ready.get_nowait().close()

    def _fill(self) -> None:
        while (name := self._wanted.get()) is not None:
            try:
                self._ready[name].put(self._makers[name](True))
            except Exception:  # noqa: BLE001 - take() makes one inline and reports the failure there
                with self._lock:
                    self._stock[name] -= 1


def wasi_config(output: GuestOutput, read_only: tuple[tuple[str, str], ...], scratch: str | None) -> WasiConfig:
    """Deny by default: no environment, no arguments, no files but the given mounts, no network."""
    wasi = WasiConfig()
    wasi.stdout_custom = lambda data: output.write("stdout", bytes(data))
    wasi.stderr_custom = lambda data: output.write("stderr", bytes(data))
    for guest_path, host_folder in read_only:
        wasi.preopen_dir(host_folder, guest_path, fs_mutable=False)
    if scratch is not None:
        wasi.preopen_dir(scratch, SCRATCH_MOUNT, fs_mutable=True)
    return wasi
