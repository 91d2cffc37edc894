"""A run as a person at a terminal reads it: each event a short line, guest tracebacks in the user's paths, a batch's progress.

The events are the same as in JSON (see events.py); only their form differs. Every text that comes from a guest is
shown with its control characters escaped, so an agent cannot move the cursor, color or forge lines on the terminal.
"""

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.status import Status
from rich.text import Text

from wasm_agents.events import Events
from wasm_agents.hints import limit_hint
from wasm_agents.sandbox import SANDBOX_MOUNT

LEVEL_STYLES = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red"}
# Fields every event may carry that the line shows in its own way, or not at all.
_SHOWN_APART = frozenset({
    "timestamp", "severity_text", "severity_number", "event.name", "trace_id", "span_id", "parent_span_id", "agent",
    "depth", "message", "body", "attributes", "text", "outcome", "duration_ms",
})
_AGENT_WIDTH = 16
_FRAME = re.compile(r'^(?P<lead>[ |+-]*)File "(?P<path>[^"\n]*)", line (?P<line>\d+)(?:, in (?P<function>.*))?$')
_SANDBOX_FRAME = SANDBOX_MOUNT + "/"  # the harness and the SDK: their frames say nothing about the agent's code
# Control characters (C0 but tab, DEL, C1) as escapes: a guest's text must not drive the terminal.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if code != 0x09}


def shown(text: str) -> str:
    """Return `text` safe to print on one line: control characters, line ends too, escaped."""
    return text.translate(_CONTROLS)


def render(record: dict[str, Any], depth: int) -> Text:
    """Return the lines of one event: time, agent indented by `depth`, level, message, the fields that matter."""
    name = str(record.get("event.name", ""))
    level = str(record.get("severity_text", "INFO"))
    agent = record.get("agent")
    line = Text()
    line.append(_clock(record.get("timestamp")) + " ", style="dim")
    who = ("  " * depth + shown(str(agent))) if agent is not None else ""
    line.append(who.ljust(_AGENT_WIDTH), style="cyan")
    line.append(" " + shown(level).ljust(7) + " ", style=LEVEL_STYLES.get(level, ""))
    message, fields = _message(name, record)
    line.append(shown(message))
    if fields:
        line.append("  " + shown(fields), style="dim")
    extra = _details(name, record)
    if extra:
        margin = " " * (13 + 2 * depth + 2)
        for text, style in extra:
            line.append("\n" + margin + shown(text), style=style)
    return line


def _message(name: str, record: dict[str, Any]) -> tuple[str, str]:
    """The message and the fields of an event, as they read in one line."""
    fields = {key: value for key, value in record.items() if key not in _SHOWN_APART and not key.startswith("exception.")}
    timing = _duration(record.get("duration_ms"))
    if name == "agent.log":
        attributes = record.get("attributes") if isinstance(record.get("attributes"), dict) else {}
        # A logging record formatted by logging's default format repeats its level and logger: the line shows both.
        body = str(record.get("body", "")).removeprefix(f"{record.get('severity_text')}:{attributes.get('logger')}:")
        return body, _fields(attributes)
    if name in ("agent.stdout", "agent.stderr"):
        return str(record.get("text", "")), name.removeprefix("agent.")
    if name == "agent.start":
        return "started", ""
    if name == "agent.end":
        if record.get("outcome") == "ok":
            return "done", "  ".join(filter(None, [timing, _fields(fields)]))
        return f"{record.get('exception.type', 'Error')}: {record.get('exception.message', '')}", timing
    if name == "chain.start":
        return "chain started", _fields({"run": str(record.get("trace_id", ""))[:12]})
    if name == "chain.end":
        run = str(record.get("trace_id", ""))[:12]
        if record.get("outcome") == "ok":
            return "chain ok", f"{record.get('hops')} hops  {timing}  run {run}"
        return f"chain failed: {record.get('error.type')} in {record.get('error.agent')}", f"{record.get('hops')} hops  {timing}  run {run}"
    if name == "delegation.refused":
        fields.pop("reason", None)
        return f"delegation refused: {record.get('message', '')}", _fields(fields)
    if name == "http.request":
        where = f"{record.get('method')} {record.get('scheme')}://{record.get('host')}:{record.get('port')}{record.get('path')}"
        return f"{where} -> {record.get('status')}", f"{timing}  {record.get('response_bytes')} bytes"
    if name == "http.refused":
        return f"HTTP request refused: {record.get('message', '')}", ""
    return str(record.get("message") or name), "  ".join(filter(None, [timing, _fields(fields)]))


def _details(name: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """The lines under an event: the setting that raises the limit it hit, the guest's traceback."""
    details = []
    if name == "agent.end" and record.get("outcome") != "ok":
        if hint := record.get("exception.hint"):
            details.append((f"hint: {hint}", "yellow"))
        details += _traceback(str(record.get("exception.stacktrace") or ""), str(record.get("exception.message", "")))
    if name == "delegation.refused":
        hint = limit_hint(str(record.get("reason")), str(record.get("message", "")), None)  # a chain's limit
        if hint:
            details.append((f"hint: {hint}", "yellow"))
    return details


def _traceback(trace: str, message: str) -> list[tuple[str, str]]:
    """A guest's traceback, short: `path:line in function` and its source, without the sandbox's own frames."""
    lines = trace.rstrip("\n").split("\n")
    if lines and lines[-1].endswith(message):
        lines.pop()  # the exception, already the event's message
    out: list[tuple[str, str]] = []
    skipping = False
    for line in lines:
        frame = _FRAME.match(line)
        if frame:
            skipping = frame["path"].startswith(_SANDBOX_FRAME)
            if not skipping:
                where = f"{frame['path']}:{frame['line']}" + (f" in {frame['function']}" if frame["function"] else "")
                out.append((frame["lead"].rstrip() + (" " if frame["lead"].strip() else "") + where, "cyan"))
            continue
        if skipping and line.startswith("    "):
            continue  # the source and carets of a sandbox frame
        skipping = False
        if line.strip() and line != "Traceback (most recent call last):":
            out.append((line.rstrip(), "" if line.startswith(" ") else "red"))
    return out


def _clock(timestamp: Any) -> str:
    """HH:MM:SS.mmm of an event's UTC timestamp, in local time."""
    try:
        moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).astimezone()
    except ValueError:
        return "--:--:--.---"
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _duration(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return ""
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.1f} ms"


def _fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}" for key, value in fields.items())


class ConsoleEvents(Events):
    """Events shown on a rich Console as short lines instead of JSON; filtered, counted and budgeted as Events are.

    An agent is indented by its depth in the chain, known from its agent.start event, which is seen here even
    when its level is not shown; events forwarded from elsewhere (Ray) fall back on their parent span. A component
    compiled for this host (at the first run after a build elsewhere) shows a spinner until the next event.
    """

    def __init__(self, console: Console, level: str = "info") -> None:
        super().__init__(console.file, level)
        self.console = console
        self._depths: dict[str, int] = {}
        self._spans: dict[str, list[str]] = {}  # per chain, to forget its spans when it ends
        self._depths_lock = threading.Lock()
        self._spinner = CompileSpinner(console)

    def emit(self, name: str, level: str = "info", **fields: Any) -> None:
        """Emit as Events does; note an agent's depth at its start, and spin while a component compiles for this host."""
        if name == "agent.start":
            self._note(fields.get("trace_id"), fields.get("span_id"), fields.get("depth"))
        with self._spinner.around(name, fields):
            super().emit(name, level, **fields)

    def _write(self, record: dict[str, Any], line: str) -> None:
        text = render(record, self._depth(record))
        with self._lock:
            self.console.print(text, soft_wrap=True, highlight=False, markup=False)
        if record.get("event.name") == "chain.end":
            with self._depths_lock:
                for span in self._spans.pop(str(record.get("trace_id")), ()):
                    self._depths.pop(span, None)

    def _note(self, trace: Any, span: Any, depth: Any) -> None:
        if isinstance(span, str) and isinstance(depth, int):
            with self._depths_lock:
                self._depths[span] = depth
                self._spans.setdefault(str(trace), []).append(span)

    def _depth(self, record: dict[str, Any]) -> int:
        span, parent = record.get("span_id"), record.get("parent_span_id")
        with self._depths_lock:
            if span in self._depths:
                return self._depths[span]
            if parent is None:
                depth = 0
            else:
                depth = self._depths.get(parent, 0) + 1
        self._note(record.get("trace_id"), span, depth)
        return depth


class CompileSpinner:
    """A spinner on a terminal from a component's compile for this host (sandbox.compile.start) to the next event."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None

    @contextmanager
    def around(self, name: str, fields: dict[str, Any]) -> Iterator[None]:
        """Wrap the emitting of event `name`: the spinner stops before it, and starts after a compile's start."""
        if self._status is not None:  # the compile it showed is over
            self._status.stop()
            self._status = None
        yield
        if name == "sandbox.compile.start" and self.console.is_terminal:
            self._status = self.console.status(Text(shown(str(fields.get("message", "compiling"))) + "..."))
            self._status.start()


class SpinningEvents(Events):
    """JSON events, with the compile spinner on `console` (a terminal) while a component is compiled for this host."""

    def __init__(self, stream: TextIO | None, level: str, console: Console) -> None:
        super().__init__(stream, level)
        self._spinner = CompileSpinner(console)

    def emit(self, name: str, level: str = "info", **fields: Any) -> None:
        """Emit as Events does, the spinner stopped before and started after a compile's start."""
        with self._spinner.around(name, fields):
            super().emit(name, level, **fields)


class BatchProgress:
    """A batch's progress bar on a console (done/total, ok/failed, elapsed), gone once stopped; without a console, nothing."""

    def __init__(self, console: Console | None, total: int) -> None:
        self.ok = self.failed = 0
        self._progress = console and Progress(
            SpinnerColumn(), MofNCompleteColumn(), BarColumn(), TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
            console=console, transient=True,
        )
        self._task = self._progress.add_task("tasks", total=total, counts="") if self._progress else None

    def start(self) -> None:
        """Draw the bar; what the console prints meanwhile goes above it."""
        if self._progress:
            self._progress.start()

    def add(self, ok: bool) -> None:
        """Count one finished task."""
        self.ok += ok
        self.failed += not ok
        if self._progress:
            counts = f"[green]{self.ok} ok[/]" + (f", [red]{self.failed} failed[/]" if self.failed else "")
            self._progress.update(self._task, advance=1, counts=counts)

    def stop(self) -> None:
        """Take the bar off the terminal (again: nothing)."""
        if self._progress:
            self._progress.stop()


@cache
def stderr_console() -> Console:
    """The one Console on stderr: events, a progress bar and spinners drawn through it do not garble each other."""
    return Console(stderr=True)
