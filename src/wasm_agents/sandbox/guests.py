"""The guests of a process: how many may run at once, the threads they run on, and those abandoned in a WASI call.

One Guests object serves every Runner of a process (`process_guests()`): the cap is about this machine's
cores and the host's own threads (the epoch ticker, the watchdog), which all Runners share. Tests and
embedders may give a Runner a Guests of its own.
"""

import os
import queue
import threading
from collections.abc import Callable
from functools import cache


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
        self.lock = threading.Lock()  # orders abandoning a guest against its finishing

    def turn(self) -> "Turn":
        """Return a new, not yet taken, share of the CPU for one invocation."""
        return Turn(self.running)


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
