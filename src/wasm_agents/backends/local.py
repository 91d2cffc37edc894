"""The local backend: chains in worker processes (see workers.py), or in this process on threads, one Runner for all."""

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wasm_agents.artifacts import TrustPolicy
from wasm_agents.backends import POLL_S, Local, output_line
from wasm_agents.errors import ErrorKind, Failure
from wasm_agents.events import Events
from wasm_agents.orchestrator import ChainResult, Runner

# A worker process takes ~0.3-0.5 s of CPU to start (interpreter, imports, Runner). `run -j 2` of the example's
# two-agent chain on 2 cores shared with other work, threads against two workers, whole process: 100 tasks 1.75 /
# 2.25 s, 200 tasks 3.57 / 3.50 s, 1000 tasks 15.8 / 10.9 s (load ~5); 200 tasks 4.73 / 5.49 s, 400 tasks
# 7.17 / 7.47 s, 1000 tasks 16.4 / 14.6 s (load ~8). Below this many tasks, threads of this process finish first.
MIN_TASKS_FOR_WORKERS = 500


def run_local(
    dist: Path, tasks: list[Any], indexes: list[int], options: Local, *, events: Events, trust: TrustPolicy | None,
    stop: threading.Event,
) -> Iterator[dict[str, Any]]:
    """Verify `dist` once, then run the tasks at `indexes`; yield each one's line as it finishes, until `stop` is set."""
    if count := worker_count(options, len(indexes)):
        from wasm_agents.backends.workers import run_in_workers

        return run_in_workers(dist, tasks, indexes, options.concurrency, count, events=events, trust=trust, stop=stop)
    return _run_here(dist, tasks, indexes, options.concurrency, events=events, trust=trust, stop=stop)


def worker_count(options: Local, tasks: int) -> int:
    """How many worker processes run `tasks` chains: none for a single task, else as asked, else one per core (none for a
    batch too small to pay for starting them); never more than run at once."""
    if tasks == 1:
        return 0
    if options.workers is not None:
        return min(options.workers, options.concurrency, tasks)
    count = min(os.cpu_count() or 1, options.concurrency) if os.name == "posix" else 0
    return count if count > 1 and tasks >= MIN_TASKS_FOR_WORKERS else 0  # one worker is no faster than this process


def _run_here(
    dist: Path, tasks: list[Any], indexes: list[int], concurrency: int, *, events: Events, trust: TrustPolicy | None,
    stop: threading.Event,
) -> Iterator[dict[str, Any]]:
    """Run the tasks on `concurrency` threads of this process, with one Runner."""
    # With one task, sandboxes made ahead of demand would only compete with its chain for the CPU (a first
    # two-agent chain in a new process: ~10 ms without them, ~17 ms with two per agent).
    warm = 0 if len(indexes) == 1 else 2
    with Runner(dist, events, warm=warm, trust=trust) as runner:
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="wasm-agents-chain")
        finished: queue.SimpleQueue[Future[ChainResult]] = queue.SimpleQueue()
        running: dict[Future[ChainResult], int] = {}
        try:
            if stop.is_set():  # while the dist was verified and compiled
                return
            for index in indexes:
                future = pool.submit(runner.run, tasks[index])
                running[future] = index
                future.add_done_callback(finished.put)
            while running:
                try:  # never an unbounded wait: this thread must wake to see `stop` (see POLL_S)
                    future = finished.get(block=not stop.is_set(), timeout=POLL_S)
                except queue.Empty:
                    if stop.is_set():  # and every line finished so far was handed over
                        return
                    continue
                index = running.pop(future)
                try:
                    result = future.result().to_json()
                except Exception as error:  # noqa: BLE001 - a host bug fails its own task, not the batch
                    failure = Failure(ErrorKind.HOST_ERROR, f"{type(error).__name__}: {error}")
                    result = {"ok": False, "error": failure.to_json()}
                yield output_line(index, tasks[index], result)
        finally:
            # Stopped early: tasks not started never start, and nobody waits for those running.
            pool.shutdown(wait=False, cancel_futures=True)
