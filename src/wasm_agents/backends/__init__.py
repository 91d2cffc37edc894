"""Where chains run: on this machine (`Local`: threads of this process, or worker processes) or on a Ray cluster (`Ray`). All yield the same lines."""

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasm_agents.artifacts import TrustPolicy
from wasm_agents.errors import WasmAgentsError
from wasm_agents.events import Events

BACKENDS = ("local", "ray")

# How long the caller's thread waits for a line before it looks at `stop` again. Also how soon it runs a signal
# handler: one that lands on another thread (Linux gives SIGINT to any thread) only runs once the main thread wakes.
POLL_S = 0.1


@dataclass(frozen=True)
class Local:
    """Run chains on this machine, `concurrency` at once: spread over `workers` worker processes (default: one per core
    for a large batch, see local.worker_count), or on threads of this process (`workers=0`, and always for one task)."""

    concurrency: int = 1
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"Local: concurrency must be at least 1, got {self.concurrency}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"Local: workers must be 0 (this process) or more, got {self.workers}")
        if self.workers and os.name != "posix":
            raise WasmAgentsError("--workers: worker processes need Linux or macOS (they get their socket as a file descriptor)")


@dataclass(frozen=True)
class Ray:
    """Run chains on Ray: the cluster at `address` (default: a local Ray for this run), `workers` actors
    (default: the cluster's CPUs), each task retried up to `retries` times when its worker dies."""

    address: str | None = None
    workers: int | None = None
    retries: int = 2


def run_tasks(
    dist: Path,
    tasks: list[Any],
    backend: Local | Ray = Local(),
    *,
    events: Events | None = None,
    trust: TrustPolicy | None = None,
    indexes: list[int] | None = None,
    stop: threading.Event | None = None,
) -> Iterator[dict[str, Any]]:
    """Verify `dist` (under `trust`, if given), then run the tasks at `indexes` (default: all) through its chain.

    Yield one output line per task as it finishes, in whatever order they finish: each line has its task's index.
    Once `stop` is set, the lines of every task finished by then are yielded and the iterator ends within POLL_S,
    leaving the other tasks unfinished (as closing it does, which stops at once).
    """
    events = events or Events(None)
    indexes = list(range(len(tasks))) if indexes is None else indexes
    stop = stop or threading.Event()
    if isinstance(backend, Local):
        from wasm_agents.backends.local import run_local

        return run_local(dist, tasks, indexes, backend, events=events, trust=trust, stop=stop)
    from wasm_agents.backends.ray import run_on_ray  # the core never imports ray

    return run_on_ray(dist, tasks, indexes, backend, events=events, trust=trust, stop=stop)


def output_line(index: int, task: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The line printed for one task: its index, its id when it has one, then the chain's result."""
    line: dict[str, Any] = {"index": index}
    if isinstance(task, dict) and isinstance(task.get("id"), (str, int)):
        line["id"] = task["id"]
    return {**line, **result}
