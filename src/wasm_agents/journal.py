"""The results file of a batch: one line per finished task, appended as each task finishes, read back to resume.

Each line is made durable (flushed and fsynced) before the next task's line is written, so after a crash,
`kill -9` or Ctrl-C the file holds every finished task once, and at most one incomplete last line, which a
resume drops and runs again.
"""

import json
import os
from pathlib import Path
from typing import Any

from wasm_agents.errors import WasmAgentsError


class Journal:
    """An open results file: which task indexes it already holds, and `append` for new lines."""

    def __init__(self, path: Path, tasks: list[Any], *, resume: bool) -> None:
        self.path = path
        self.done: dict[int, bool] = {}  # index -> ok, for every task the file holds a line for
        try:
            data = path.read_bytes() if path.exists() else b""
        except OSError as error:
            raise WasmAgentsError(f"{path}: cannot read results: {error.strerror}") from None
        if data and not resume:
            count = data.count(b"\n")
            raise WasmAgentsError(
                f"{path}: already holds {count} result line{'s' if count != 1 else ''}: "
                "add --resume to run only the tasks without one, or choose another --output"
            )
        complete = data[: data.rfind(b"\n") + 1]  # a last line without its newline was cut short: run that task again
        for number, line in enumerate(complete.splitlines(), 1):
            index, ok = _parse(line, tasks, f"{path}:{number}")
            if index in self.done:
                raise WasmAgentsError(f"{path}:{number}: a second line for task {index}")
            self.done[index] = ok
        try:
            self._file = open(path, "r+b" if path.exists() else "xb")
            self._file.truncate(len(complete))
            self._file.seek(len(complete))
        except OSError as error:
            raise WasmAgentsError(f"{path}: cannot write results: {error.strerror}") from None

    def append(self, line: str) -> None:
        """Write one result line and make it durable before returning."""
        self._file.write(line.encode() + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _parse(line: bytes, tasks: list[Any], where: str) -> tuple[int, bool]:
    """Return the task index and outcome of one line, refusing a line that does not belong to this task file."""
    try:
        record = json.loads(line)
        index, ok = record["index"], record["ok"]
        if not isinstance(index, int) or isinstance(index, bool) or not isinstance(ok, bool):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise WasmAgentsError(f"{where}: not a result line of wasm-agents run") from None
    if not 0 <= index < len(tasks):
        raise WasmAgentsError(f"{where}: task {index} is not in the task file ({len(tasks)} tasks): is it the same file?")
    task = tasks[index]
    expected = task.get("id") if isinstance(task, dict) and isinstance(task.get("id"), (str, int)) else None
    if record.get("id") != expected:
        raise WasmAgentsError(f"{where}: task {index} has id {record.get('id')!r} here but {expected!r} in the task file: is it the same file?")
    return index, ok
