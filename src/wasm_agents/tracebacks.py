"""A guest's traceback in the user's terms: its files named as in the project, each frame with its source line.

Inside a sandbox an agent's files are mounted at /0, its vendored packages at /1 and the stdlib at /python, so the
guest names them so. The host knows which agent ran and reads the lines from the verified dist, so a frame reads
`File "agent-parser/main.py", line 52` with its line under it even when the guest could not read its own file.
"""

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from wasm_agents.artifacts import VerifiedDist
from wasm_agents.errors import Failure
from wasm_agents.sandbox import CODE_MOUNT, DEPS_MOUNT, STDLIB_MOUNT

# A frame line, also inside an exception group ("  |   File ..."): what precedes `File`, the path, the rest.
_FRAME = re.compile(r'^(?P<lead>[ |+-]*)File "(?P<path>[^"\n]*)", line (?P<line>\d+)(?P<rest>.*)$')
# Source is read only from files this small, and from this many files per traceback: its text comes from the guest.
MAX_SOURCE_BYTES = 1 << 20
MAX_SOURCE_FILES = 16


class Place(NamedTuple):
    """A folder mounted into the guest: its path there, its name in the user's terms, and its files on this host."""

    mount: str
    shown: str
    root: Path


def readable_traceback(trace: str, places: Sequence[Place]) -> str:
    """Return `trace` with the paths under each place's mount named as the user knows them, each with its source line.

    A source line the guest printed is kept (the carets under it point into it); a missing one is read from the
    place's files. Paths outside every place are left as they are.
    """
    lines = trace.split("\n")
    out: list[str] = []
    sources: dict[Path, list[str] | None] = {}
    for index, line in enumerate(lines):
        frame = _FRAME.match(line)
        place = frame and next((p for p in places if frame["path"].startswith(p.mount + "/")), None)
        if place is None:
            out.append(line)
            continue
        relative = frame["path"][len(place.mount) + 1 :]
        out.append(f'{frame["lead"]}File "{place.shown}/{relative}", line {frame["line"]}{frame["rest"]}')
        indent = frame["lead"] + "  "
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following.startswith(indent) and following.strip() and not _FRAME.match(following):
            continue  # the guest printed the line
        source = _source_line(place.root, relative, int(frame["line"]), sources)
        if source:
            out.append(indent + source)
    return "\n".join(out)


def readable_failure(failure: Failure | None, dist: VerifiedDist, agent: str) -> Failure | None:
    """Return `failure` with its traceback made readable (see readable_traceback) for `agent` of `dist`."""
    if failure is None or not failure.traceback:
        return failure
    folders = dist.agent_folders(agent)
    places = (
        Place(CODE_MOUNT, dist.project.agents[agent].folder, folders.code),
        Place(DEPS_MOUNT, "site-packages", folders.deps),
        Place(STDLIB_MOUNT, "stdlib", folders.stdlib),
    )
    return replace(failure, traceback=readable_traceback(failure.traceback, places))


def _source_line(root: Path, relative: str, number: int, sources: dict[Path, list[str] | None]) -> str | None:
    """Line `number` of the file at `relative` under `root`, stripped; None when it cannot be read from there."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        return None  # the path is the guest's text: nothing outside `root` is ever read
    path = root.joinpath(*parts)
    if path not in sources:
        if len(sources) >= MAX_SOURCE_FILES:
            return None
        sources[path] = _read_lines(root, path)
    lines = sources[path]
    return lines[number - 1].strip() if lines and 0 < number <= len(lines) else None


def _read_lines(root: Path, path: Path) -> list[str] | None:
    try:
        if not path.resolve().is_relative_to(root.resolve()) or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
            return None
        return path.read_text(encoding="utf-8", errors="replace").split("\n")  # as linecache: only line ends end lines
    except (OSError, ValueError):
        return None
