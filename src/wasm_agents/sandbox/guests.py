"""The guests of a process: how many may run at once, the threads they run on, those abandoned in a WASI call,
and stopping them all on the way out.

One Guests object serves every Runner of a process (`process_guests()`): the cap is about this machine's
cores and the host's own threads (the epoch ticker, the watchdog), which all Runners share. Tests and
embedders may give a Runner a Guests of its own.
"""

import math
import os
import queue
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wasm_agents.sandbox.invocation import Invocation

# How long stop() may take: moving the epoch (2-5 µs a tick, a tick per EPOCH_TICK_S to the furthest deadline), then
# waiting for the guests to end (a guest blocked in a WASI call, such as a sleep, ends only when the call returns).
STOP_ADVANCE_S = 0.5
STOP_WAIT_S = 0.5
# Past the furthest deadline: the ticks the epoch ticker may owe, as it lags while it waits for the GIL.
STOP_MARGIN_S = 1.0


class Workers:
    """Daemon threads that run invocations, so the caller can stop waiting for a guest stuck in a WASI call.

    Threads are reused (starting one costs ~0.5 ms under load); one stuck in an abandoned guest is
    simply never idle again, and a new one is started when none is idle.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on an idle worker, or on a new one."""
        with self._lock:
            start_one = self._idle == 0
            if not start_one:
                self._idle -= 1
        if start_one:
            threading.Thread(target=self._work, name="wasm-agents-invocation", daemon=True).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


class Guests:
    """Permits for running guests, the worker threads, and the count of abandoned guests still blocked."""

    def __init__(self, max_running: int) -> None:
        # More guests at once than cores only adds contention (for the CPU, the GIL and the kernel's memory
        # map) that starves the host's own threads: the epoch ticker and the watchdog.
        self.running = threading.BoundedSemaphore(max_running)
        self.workers = Workers()
        self.lingering = 0
        self.lock = threading.Lock()  # orders abandoning a guest against its finishing, and starting one against stop()
        self.active: set[Invocation] = set()  # from just before it takes its sandbox until that sandbox is closed
        self.ended = threading.Condition(self.lock)  # notified when a guest leaves `active`
        self.stopped = False

    def turn(self) -> "Turn":
        """Return a new, not yet taken, share of the CPU for one invocation."""
        return Turn(self.running)

    def stop(self) -> None:
        """Trap every running guest and start no more, so that none writes in a scratch folder while it is removed.

        For the way out of a process (see `stop_process_guests`): the epoch of each engine running them moves past
        the furthest deadline of its guests at once, so each traps at its next epoch check, and its invocation ends
        as failed. Returns once they have ended, or after STOP_ADVANCE_S + STOP_WAIT_S at most.
        """
        from wasm_agents.sandbox.engine import EPOCH_TICK_S, engines  # loads wasmtime, which a process without guests never did

        latest: dict[bool, float] = {}  # per engine, by whether it meters fuel: the furthest deadline of its guests
        with self.lock:
            self.stopped = True
            for invocation in self.active:
                fuel = invocation.limits.fuel is not None
                latest[fuel] = max(latest.get(fuel, invocation.deadline), invocation.deadline)
        if not latest:
            return
        until = time.monotonic() + STOP_ADVANCE_S
        for fuel, deadline in latest.items():
            engines().advance(fuel, math.ceil((deadline - time.monotonic() + STOP_MARGIN_S) / EPOCH_TICK_S), until)
        until = time.monotonic() + STOP_WAIT_S
        with self.ended:  # not for those already abandoned in a WASI call: theirs may never return
            while any(not invocation.abandoned for invocation in self.active) and (left := until - time.monotonic()) > 0:
                self.ended.wait(left)


class Turn:
    """One running guest's share of the CPU: a permit, given back at most once per take."""

    def __init__(self, permits: threading.BoundedSemaphore) -> None:
        self._permits = permits
        self._held = False
        self._lock = threading.Lock()

    def take(self) -> None:
        """Wait for a permit."""
        self._permits.acquire()
        with self._lock:
            self._held = True

    def give_back(self) -> None:
        """Return the permit if this turn holds one."""
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._permits.release()


@cache
def process_guests() -> Guests:
    """Return the Guests shared by every Runner of this process: two running guests per core."""
    return Guests(2 * (os.cpu_count() or 1))


def stop_process_guests() -> None:
    """Stop the guests of this process (see Guests.stop), if it ever had any."""
    if process_guests.cache_info().currsize:
        process_guests().stop()
