"""Fresh sandboxes of an agent of the scientific runtime, for the orchestrator: the same Sandbox as a component's.

Each is a fresh instance of the runtime's one compiled module, in its own Store under the agent's limits,
restored from the agent's memory image (taken at build time after its imports: scientific.image), so no
invocation pays for importing numpy or pandas. Its `call(input)` runs the component's own harness inside
(guest/wasm_agents_scientific.py) and answers as a component's `run` export does; its host calls, log records
and output reach the running invocation as a component's do.
"""

import json
import math
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from wasmtime import Module, Store, Trap
from wasmtime.component import Variant

from wasm_agents.artifacts import AgentFolders
from wasm_agents.errors import ErrorKind
from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox import CODE_MOUNT, DATA_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT, SCRATCH_MOUNT
from wasm_agents.sandbox.engine import PREPARE_S, PREPARE_TICKS, WARM_UP_HOST, EngineSet, answering, current
from wasm_agents.sandbox.pool import GuestOutput, Mounts, NotPrepared, Sandbox, wasi_config
from wasm_agents.sandbox.scratch import new_scratch, remove_tree
from wasm_agents.scientific.image import Image
from wasm_agents.scientific.instance import _Guest, linker, serving, turn
from wasm_agents.scientific.wheel import STDLIB_MOUNT

GUEST_DIR = Path(__file__).parent / "guest"
RUNTIME_GUEST_MOUNT = "/3"  # the runtime's own guest modules: wit_world over its door, the harness's driver
# The guest's import path: the agent's code, its packages, the sandbox's guest modules, the runtime's, then the stdlib zip.
PATH = (CODE_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT, RUNTIME_GUEST_MOUNT)
# Run once, before the image is taken: everything an invocation needs is imported by then.
PREPARE = f"import sys\nsys.path[:0] = {list(PATH)!r}\nimport wasm_agents_scientific\nwasm_agents_scientific.prepare()\n"
WARM_UP_FUEL = 2**62  # restoring may be charged for; the agent's budget starts with its call


def mounts(folders: AgentFolders, scratch_mb: int | None) -> Mounts:
    """The folders an agent's instances see, read-only, in the order its image was taken with: their fds are in the image."""
    mounted = {
        STDLIB_MOUNT: folders.stdlib, CODE_MOUNT: folders.code, DEPS_MOUNT: folders.deps, SANDBOX_MOUNT: folders.sandbox,
        RUNTIME_GUEST_MOUNT: folders.runtime_guest, DATA_MOUNT: folders.data,
    }  # fmt: skip
    return Mounts.at(mounted, scratch_mb)  # /data too, empty without one: the image's mount table has it


class _InvocationGuest(_Guest):
    """The host side of an agent's instance: its door passes host calls and log records to the running invocation."""

    def host_call(self, name: str, payload: str) -> tuple[bool, str]:
        """Answer as the component's host-call import is answered."""
        return current.invocation.host_call(name, payload)

    def log(self, level: str, record: str) -> None:
        """Take a record as the component's log import does."""
        current.invocation.log(level, record)


@dataclass(frozen=True)
class ScientificMaker:
    """What fresh sandboxes of one agent of the scientific runtime are made of: the module, the agent's image, limits, mounts."""

    engines: EngineSet
    module: Module
    image: Image
    limits: Limits
    mounts: Mounts
    not_prepared: threading.Event = field(default_factory=threading.Event, compare=False)

    def make(self, warm_up: bool = True) -> Sandbox:
        """Instantiate the module in a fresh Store under the limits and restore the agent's image into it.

        Restoring maps the image's pages without touching them: there is nothing to warm up ahead of the task. Once
        an instance of this agent could not be prepared, instances are made only on demand (`warm_up` False), so that
        its failures take its own tasks' time and not the pool's.
        """
        if warm_up and self.not_prepared.is_set():
            raise NotPrepared("an earlier instance of this agent could not be prepared: its instances are made on demand only")
        fuel = self.limits.fuel is not None
        store = Store(self.engines.engine(fuel))
        output = GuestOutput()
        scratch = str(new_scratch()) if self.mounts.scratch_mb else None
        guest = _InvocationGuest(self.limits, math.inf)
        try:
            store.set_wasi(wasi_config(output, self.mounts.read_only, scratch))
            guest.origin_ns = time.perf_counter_ns()
            store.set_limits(memory_size=self.limits.memory_mb * MIB)
            store.set_epoch_deadline(PREPARE_TICKS)
            if fuel:
                store.set_fuel(WARM_UP_FUEL)
            exports = linker(self.engines.engine(fuel)).instantiate(store, self.module).exports(store)
            paths = (*(guest_path for guest_path, _ in self.mounts.read_only), *([SCRATCH_MOUNT] if scratch else []))
            with serving(guest), answering(WARM_UP_HOST):
                self.image.restore(store, exports, paths)
        except Trap as trap:  # in the reseed: code the agent's module-level code may have replaced
            if scratch:
                remove_tree(Path(scratch))
            self.not_prepared.set()
            reason = f"did not end within {PREPARE_S:g} s" if "wasm trap: interrupt" in str(trap) else str(trap).splitlines()[0]
            raise NotPrepared(f"reseeding the random generators of its fresh instance {reason} (did its module-level code replace random.seed?)") from None
        except MemoryError as error:  # its limit is below what the image holds (a build checks that, for the limit it had)
            if scratch:
                remove_tree(Path(scratch))
            raise MemoryError(f"memory limit of {self.limits.memory_mb} MiB is below what the agent's imports take: {error}") from None
        except BaseException:
            if scratch:
                remove_tree(Path(scratch))
            raise
        return Sandbox(store, partial(_call, store, exports, guest), output, scratch, (self.mounts.scratch_mb or 0) * MIB)


def _call(store: Store, exports: Any, guest: _InvocationGuest, input: str) -> Variant | None:
    """Run the harness on `input`; answer as a component's `run` export: "ok" with the result's JSON, "err" with a report."""
    guest.deadline = current.invocation.deadline
    with serving(guest):
        turn(store, exports, f"import wasm_agents_scientific\nwasm_agents_scientific.run({input!r})\n".encode())
    if guest.timed_out:  # a wait reached the deadline, and the guest returned before the epoch stopped it
        raise Trap("wasm trap: interrupt")
    if guest.answer_refused:
        return Variant("err", json.dumps({"type": str(ErrorKind.NOT_SERIALIZABLE), "message": guest.answer_refused}))
    if guest.answer is None:
        return None  # the harness always answers: read as a protocol error
    kind, payload = guest.answer
    return Variant("ok" if kind == "result" else "err", payload.decode("utf-8", "replace"))
