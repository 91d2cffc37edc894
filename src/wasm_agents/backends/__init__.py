"""Where chains run: in this process (`local`) or on a Ray cluster (`ray`). Both yield the same lines."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wasm_agents.events import Events

BACKENDS = ("local", "ray")


def run_tasks(
    dist: Path, tasks: list[Any], *, backend: str = "local", events: Events | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """Run every task through the chain of `dist`; yield one output line per task, in task order.

    Options: `runner_options` (e.g. `{"trust": policy}`) for both; `concurrency` for local;
    `address`, `workers`, `retries` and `log_level` for ray.
    """
    events = events or Events(None)
    if backend == "local":
        from wasm_agents.backends.local import run_local

        return run_local(dist, tasks, events=events, **options)
    if backend == "ray":
        from wasm_agents.backends.ray import run_on_ray  # the core never imports ray

        return run_on_ray(dist, tasks, events=events, **options)
    raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")


def output_line(index: int, task: Any, result: dict[str, Any]) -> dict[str, Any]:
    """The line printed for one task: its index, its id when it has one, then the chain's result."""
    line: dict[str, Any] = {"index": index}
    if isinstance(task, dict) and isinstance(task.get("id"), (str, int)):
        line["id"] = task["id"]
    return {**line, **result}
