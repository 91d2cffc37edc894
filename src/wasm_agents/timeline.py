"""A run's timeline: event lines read into chains of hops, written as one self-contained HTML page."""

import base64
import hashlib
import json
import math
import re
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from wasm_agents.errors import LIMITS, ErrorKind, WasmAgentsError
from wasm_agents.events import EventBudget, Events
from wasm_agents.paths import write_atomically
from wasm_agents.sandbox.guest_json import no_constant

# Fields every event has, or that place it; the rest is what the event says.
_PLACING = frozenset({"timestamp", "severity_text", "severity_number", "event.name", "trace_id", "span_id", "parent_span_id", "agent"})
_DATA = "__TIMELINE_DATA__"
_SCRIPT_HASH = "__SCRIPT_HASH__"
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)  # the page's own code: the data's tag has a type


@dataclass
class Entry:
    """One event within a hop or a chain, as the page shows it."""

    time: datetime
    name: str
    level: str
    text: str
    detail: str = ""
    duration_ms: float | None = None  # an HTTP request: drawn as a bar ending at `time`


@dataclass
class Hop:
    """One agent invocation, from its agent.start and agent.end events."""

    span_id: str
    agent: str = "?"
    parent_span_id: str | None = None
    depth: int | None = None
    queued: datetime | None = None  # agent.start: the hop's sandbox was asked for
    end: datetime | None = None
    duration_ms: float | None = None
    outcome: str | None = None  # None until agent.end: the run stopped while it ran
    error: dict[str, str] | None = None
    fuel_used: int | None = None
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Chain:
    """One chain run (a trace): its hops and how it ended."""

    trace_id: str
    start: datetime | None = None
    end: datetime | None = None
    duration_ms: float | None = None
    outcome: str | None = None  # None when there is no chain.end
    error_type: str | None = None
    error_agent: str | None = None
    worker: str | None = None
    first: datetime = datetime.max.replace(tzinfo=UTC)  # the earliest of its events
    hops: dict[str, Hop] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Timeline:
    """The chains of an events file, in the order they started, and the lines that were not events."""

    source: str
    chains: list[Chain]
    skipped: list[int]


def read_events(path: Path) -> Timeline:
    """Read the events file at `path` (`-`: stdin) into chains; a malformed event stops with its file and line."""
    try:
        if str(path) == "-":
            return read_lines(sys.stdin, "stdin")
        with path.open(encoding="utf-8") as stream:
            return read_lines(stream, str(path))
    except (OSError, UnicodeDecodeError) as error:
        raise WasmAgentsError(f"{path}: cannot read events: {getattr(error, 'strerror', None) or error}") from None


def read_lines(lines: Iterable[str], source: str) -> Timeline:
    """Read event lines into chains; lines that are not events (other output on stderr) are skipped and counted."""
    chains: dict[str, Chain] = {}
    skipped: list[int] = []
    pending: tuple[int, str] | None = None  # a line that is not JSON: an error unless it is the last, cut short
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if pending:
            raise WasmAgentsError(f"{source}:{pending[0]}: not a JSON event: {pending[1]}")
        if not line.startswith("{"):
            skipped.append(number)
            continue
        try:
            record = json.loads(line, parse_constant=no_constant)
        except (ValueError, RecursionError) as error:
            pending = (number, str(error))
            continue
        if not isinstance(record, dict) or "event.name" not in record:
            skipped.append(number)  # e.g. a result line, when stdout and stderr went to one file
            continue
        _add(chains, record, f"{source}:{number}")
    if pending:
        skipped.append(pending[0])
    ordered = sorted(chains.values(), key=_chain_start)
    return Timeline(source, ordered, skipped)


def _add(chains: dict[str, Chain], record: dict[str, Any], where: str) -> None:
    """Place one event in its chain and hop; events of no chain (builds, Ray workers) are left out."""
    name = _get(record, "event.name", str, where)
    trace_id = _get(record, "trace_id", str, where)
    if trace_id is None:
        return
    time = _time(record, where)
    level = str(record.get("severity_text", "INFO")).lower()
    chain = chains.setdefault(trace_id, Chain(trace_id))
    chain.first = min(chain.first, time)
    if "ray.node_id" in record:
        chain.worker = f"Ray node {str(record['ray.node_id'])[:12]}, pid {record.get('ray.worker_pid')}"
    if name == "chain.start":
        chain.start = time
        return
    if name == "chain.end":
        chain.end = time
        chain.duration_ms = _get(record, "duration_ms", float, where)
        chain.outcome = _get(record, "outcome", str, where)
        chain.error_type = _get(record, "error.type", str, where)
        chain.error_agent = _get(record, "error.agent", str, where)
        return
    span_id = _get(record, "span_id", str, where)
    if span_id is None:
        chain.entries.append(_entry(name, level, time, record, where))
        return
    hop = chain.hops.setdefault(span_id, Hop(span_id))
    hop.agent = _get(record, "agent", str, where) or hop.agent
    hop.parent_span_id = _get(record, "parent_span_id", str, where) or hop.parent_span_id
    if name == "agent.start":
        hop.queued = time
        hop.depth = _get(record, "depth", int, where)
    elif name == "agent.end":
        hop.end = time
        hop.duration_ms = _get(record, "duration_ms", float, where)
        hop.outcome = _get(record, "outcome", str, where)
        hop.fuel_used = _get(record, "fuel_used", int, where)
        error_type = _get(record, "exception.type", str, where)
        if error_type is not None:
            hop.error = {
                "type": error_type,
                "message": _get(record, "exception.message", str, where) or "",
                "traceback": _get(record, "exception.stacktrace", str, where) or "",
                "hint": _get(record, "exception.hint", str, where) or "",
            }
    else:
        hop.entries.append(_entry(name, level, time, record, where))


def _get(record: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """Return `record[key]` when it has the expected type, None when absent; anything else is bad input."""
    value = record.get(key)
    if value is None:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is float and not math.isfinite(value)):
        names = {str: "a string", int: "an integer", float: "a number"}
        raise WasmAgentsError(f"{where}: {key}: expected {names[kind]}, got {json.dumps(value)[:60]}")
    return value


def _time(record: dict[str, Any], where: str) -> datetime:
    text = _get(record, "timestamp", str, where)
    try:
        time = datetime.fromisoformat(text or "")
    except ValueError:
        raise WasmAgentsError(f"{where}: timestamp: expected an ISO 8601 time, got {json.dumps(text)[:60]}") from None
    if time.tzinfo is None:
        raise WasmAgentsError(f"{where}: timestamp: expected a time zone (like Z), got {json.dumps(text)[:60]}")
    return time


def _entry(name: str, level: str, time: datetime, record: dict[str, Any], where: str) -> Entry:
    """Say what an event within a hop means, in a line (and a detail, e.g. the fields or a text of many lines)."""
    if name == "agent.log":
        attributes = record.get("attributes")
        shown = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in attributes.items()) if isinstance(attributes, dict) else ""
        return Entry(time, name, level, str(record.get("body", "")), shown)
    if name in ("agent.stdout", "agent.stderr"):
        return Entry(time, name, level, str(record.get("text", "")))
    if name == "delegation.refused":
        text = f"delegation to {record.get('target') or '?'} refused ({record.get('reason')}): {record.get('message', '')}"
        return Entry(time, name, level, text)
    if name in ("http.request", "http.refused"):
        port = record.get("port")
        default = {"http": 80, "https": 443}.get(str(record.get("scheme")))
        url = f"{record.get('scheme')}://{record.get('host')}{'' if port in (None, default) else f':{port}'}{record.get('path') or ''}"
        if name == "http.refused":
            return Entry(time, name, level, f"{record.get('method')} {url} refused ({record.get('reason')}): {record.get('message', '')}")
        text = (
            f"{record.get('method')} {url} → {record.get('status')} "
            f"({record.get('request_bytes', 0)} B sent, {record.get('response_bytes', 0)} B received)"
        )
        return Entry(time, name, level, text, duration_ms=_get(record, "duration_ms", float, where))
    message = record.get("message", record.get("body", ""))
    detail = {
        key: value for key, value in record.items() if key not in _PLACING and key not in ("message", "body") and not key.startswith("ray.")
    }
    return Entry(time, name, level, str(message), json.dumps(detail, default=str) if detail else "")


def _chain_start(chain: Chain) -> datetime:
    """When the chain started: chain.start, else the earliest of its hops' starts and of its events."""
    if chain.start:
        return chain.start
    starts = [start for hop in chain.hops.values() if (start := _hop_start(hop))]
    if chain.end and chain.duration_ms is not None:
        starts.append(chain.end - timedelta(milliseconds=chain.duration_ms))
    return min(starts, default=chain.first)


def _hop_start(hop: Hop) -> datetime | None:
    """When the hop's agent got its turn to run: its duration counts from there, and ends at agent.end."""
    if hop.end and hop.duration_ms is not None:
        return hop.end - timedelta(milliseconds=hop.duration_ms)
    return hop.queued


def _ms(time: datetime | None, origin: datetime) -> float | None:
    return None if time is None else round((time - origin).total_seconds() * 1000, 3)


def _depth(hop: Hop, hops: dict[str, Hop]) -> int:
    """The hop's depth as agent.start said, else counted along its parents (agent.start is a debug event)."""
    if hop.depth is not None:
        return hop.depth
    depth, parent, seen = 0, hop.parent_span_id, {hop.span_id}
    while parent and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = hops[parent].parent_span_id if parent in hops else None
    return depth


def _tree_order(hops: dict[str, Hop], origin: datetime) -> list[Hop]:
    """Every hop after its caller, the hops of one caller in the order they started.

    Starts alone could put a helper before its caller: each end is stamped when its event is written, a little late under load.
    """
    def start(hop: Hop) -> datetime:
        return _hop_start(hop) or origin

    called: dict[str | None, list[Hop]] = {}
    for hop in hops.values():
        called.setdefault(hop.parent_span_id if hop.parent_span_id in hops else None, []).append(hop)
    ordered: list[Hop] = []
    stack = sorted(called.get(None, []), key=start, reverse=True)
    while stack:
        hop = stack.pop()
        ordered.append(hop)
        stack.extend(sorted(called.get(hop.span_id, []), key=start, reverse=True))
    seen = {hop.span_id for hop in ordered}
    return ordered + sorted((hop for hop in hops.values() if hop.span_id not in seen), key=start)  # parents in a loop: bad input


def _passed_on(hop: Hop, hops: dict[str, Hop]) -> bool:
    """True when the hop failed only by letting a failed delegation's DelegationError through, as the orchestrator judges it."""
    if not hop.error or hop.error["type"] != ErrorKind.DELEGATION_ERROR:
        return False
    refused = any(entry.name == "delegation.refused" for entry in hop.entries)
    return refused or any(child.parent_span_id == hop.span_id and child.outcome == "error" for child in hops.values())


def page_data(timeline: Timeline) -> dict[str, Any]:
    """Return what the page shows, as JSON-ready data: times in ms from each chain's start."""
    chains = []
    for chain in timeline.chains:
        origin = _chain_start(chain)
        hops = []
        for hop in _tree_order(chain.hops, origin):
            start = _hop_start(hop)
            hops.append({
                "span_id": hop.span_id,
                "parent_span_id": hop.parent_span_id,
                "agent": hop.agent,
                "depth": _depth(hop, chain.hops),
                "start_ms": _ms(start, origin),
                "queued_ms": _ms(hop.queued, origin),
                "end_ms": _ms(hop.end, origin),
                "duration_ms": hop.duration_ms,
                "outcome": hop.outcome or "unfinished",
                "limit": hop.error["type"] if hop.error and hop.error["type"] in LIMITS else None,
                "error": hop.error,
                "passed_on": _passed_on(hop, chain.hops),
                "fuel_used": hop.fuel_used,
                "entries": [_entry_data(entry, origin) for entry in hop.entries],
            })
        ends = [hop["end_ms"] for hop in hops if hop["end_ms"] is not None]
        # The failure started at the deepest hop of its agent that failed with its type: the message is that hop's.
        origin_hops = [hop for hop in hops if hop["agent"] == chain.error_agent and (hop["error"] or {}).get("type") == chain.error_type]
        message = max(origin_hops, key=lambda hop: hop["depth"])["error"]["message"] if origin_hops else None
        duration = chain.duration_ms if chain.duration_ms is not None else max(ends, default=0.0)
        chains.append({
            "trace_id": chain.trace_id,
            "start": origin.isoformat(timespec="milliseconds"),
            "duration_ms": duration,
            "outcome": chain.outcome or "unfinished",
            "error_type": chain.error_type,
            "error_agent": chain.error_agent,
            "error_message": message,
            "limit": chain.error_type if chain.error_type in LIMITS else None,
            "root": hops[0]["agent"] if hops else None,
            "worker": chain.worker,
            "hops": hops,
            "entries": [_entry_data(entry, origin) for entry in chain.entries],
        })
    return {"source": timeline.source, "chains": chains}


def _entry_data(entry: Entry, origin: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {"at_ms": _ms(entry.time, origin), "name": entry.name, "level": entry.level, "text": entry.text}
    if entry.detail:
        data["detail"] = entry.detail
    if entry.duration_ms is not None:
        data["duration_ms"] = entry.duration_ms
    return data


def render(timeline: Timeline) -> str:
    """Return the page: the template with the data embedded as JSON, and a policy that lets only its own script run."""
    template = resources.files("wasm_agents").joinpath("templates/timeline.html").read_text(encoding="utf-8")
    script = _SCRIPT.search(template)
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    # Every <, > and & in the data is escaped: no text from an agent can end the script element or open another.
    data = json.dumps(page_data(timeline), allow_nan=False, default=str)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    head, tail = template.replace(_SCRIPT_HASH, f"sha256-{digest}").split(_DATA)
    return head + data + tail


def write_page(timeline: Timeline, path: Path) -> None:
    """Write the timeline page to `path` atomically."""
    check_target(path)
    try:
        write_atomically(path, render(timeline).encode("utf-8"))
    except OSError as error:
        raise WasmAgentsError(f"{path}: cannot write the timeline: {error.strerror or error}") from None


def check_target(path: Path) -> None:
    """Refuse a page path that cannot be written, before anything runs."""
    if path.is_dir():
        raise WasmAgentsError(f"{path}: is a folder; give the path of the HTML file to write")
    if not path.parent.is_dir():
        raise WasmAgentsError(f"{path}: cannot write the timeline: no such folder {path.parent}")


class Recorder(Events):
    """Events that go on to `events` as before, while every event, at debug level, is kept for the timeline.

    The guest's events are counted against a budget of the recorder's own, so the one the run's events
    are held to is charged exactly as without a recording.
    """

    def __init__(self, events: Events) -> None:
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="wasm-agents-trace-")
        super().__init__(self._spool, "debug")
        self._events = events
        self._budgets: weakref.WeakKeyDictionary[EventBudget, EventBudget] = weakref.WeakKeyDictionary()
        self._budgets_lock = threading.Lock()

    def emit(self, name: str, level: str = "info", *, budget: EventBudget | None = None, **fields: Any) -> None:
        """Emit to the run's events, and record at debug level."""
        self._events.emit(name, level, budget=budget, **fields)
        if budget is not None:
            with self._budgets_lock:
                budget = self._budgets.setdefault(budget, EventBudget(budget.limit))
        super().emit(name, level, budget=budget, **fields)

    def forward(self, line: str, extra: dict[str, Any]) -> None:
        """Forward to the run's events, and record at debug level."""
        self._events.forward(line, extra)
        super().forward(line, extra)

    def timeline(self, source: str) -> Timeline:
        """Read what was recorded so far (chains still running after Ctrl-C may add more, unread)."""
        with self._lock:
            self._spool.seek(0)
            return read_lines(self._spool, source)


@contextmanager
def recording(events: Events, path: Path | None) -> Iterator[Events]:
    """Yield `events`, or with a `path` a Recorder of them that writes the timeline there however the run ends."""
    if path is None:
        yield events
        return
    check_target(path)
    recorder = Recorder(events)
    try:
        yield recorder
    finally:
        write_page(recorder.timeline("this run"), path)
