"""The local backend: one Runner in this process, `concurrency` chains at once on threads."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wasm_agents.backends import output_line
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner


def run_local(
    dist: Path, tasks: list[Any], *, events: Events, concurrency: int = 1, runner_options: dict[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Verify `dist` once, then run the tasks; yield their lines in task order as they complete."""
    options = dict(runner_options or {})
    if len(tasks) == 1:
        # Sandboxes made ahead of demand would only compete with the one chain for the CPU (a first
        # two-agent chain in a new process: ~10 ms without them, ~17 ms with two per agent).
        options.setdefault("warm", 0)
    with Runner(dist, events, **options) as runner, ThreadPoolExecutor(max_workers=concurrency) as pool:
        for index, (task, result) in enumerate(zip(tasks, pool.map(runner.run, tasks), strict=True)):
            yield output_line(index, task, result.to_json())
