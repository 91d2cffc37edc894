"""Structured events: one JSON object per line, with OpenTelemetry log field names where one exists."""

import json
import secrets
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

from wasm_agents.sandbox import LOG_LEVELS
from wasm_agents.sandbox.guest_json import no_constant

LEVELS = dict(zip(LOG_LEVELS, (10, 20, 30, 40), strict=True))
SEVERITY_NUMBER = dict(zip(LOG_LEVELS, (5, 9, 13, 17), strict=True))  # OpenTelemetry severity numbers


class EventBudget:
    """The bytes of events one invocation may cause; past them, its events are dropped, and counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.dropped = 0
        self.dropped_bytes = 0

    def take(self, size: int) -> bool:
        """Charge an event of `size` bytes; False, and counted as dropped, when it does not fit."""
        if self.dropped or self.used + size > self.limit:
            self.dropped += 1
            self.dropped_bytes += size
            return False
        self.used += size
        return True


class Events:
    """A thread-safe JSON-lines writer filtered by level; `stream=None` discards everything."""

    def __init__(self, stream: TextIO | None, level: str = "info") -> None:
        if level not in LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
        self._stream = stream
        self.level = level
        self._threshold = LEVELS[level]
        self._lock = threading.Lock()

    def enabled(self, level: str) -> bool:
        """True when events of `level` are written."""
        return self._stream is not None and LEVELS.get(level, 20) >= self._threshold

    def emit(self, name: str, level: str = "info", *, budget: EventBudget | None = None, **fields: Any) -> None:
        """Write one event named `name` with `fields`, if it fits in `budget` when one is given."""
        if not self.enabled(level):
            return
        record = {
            "timestamp": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "severity_text": level.upper(),
            "severity_number": SEVERITY_NUMBER.get(level, 9),
            "event.name": name,
            **{key: value for key, value in fields.items() if value is not None},
        }
        line = json.dumps(record, default=str, allow_nan=False) + "\n"
        if budget is not None and not budget.take(len(line)):
            return
        self._write(record, line)

    def forward(self, line: str, extra: dict[str, Any]) -> None:
        """Re-emit an event line written elsewhere (e.g. on a Ray worker), adding `extra` fields."""
        if self._stream is None:
            return
        try:
            record = json.loads(line, parse_constant=no_constant)
        except ValueError:
            return
        if not isinstance(record, dict) or not self.enabled(str(record.get("severity_text", "INFO")).lower()):
            return
        record = {**record, **extra}
        self._write(record, json.dumps(record, default=str, allow_nan=False) + "\n")

    def _write(self, record: dict[str, Any], line: str) -> None:
        """Write one event, `record` as its JSON `line`; a subclass may show `record` otherwise (see console.py)."""
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


def new_trace_id() -> str:
    """Return a random OpenTelemetry trace id (32 hex digits): one per chain run."""
    return secrets.token_hex(16)


def new_span_id() -> str:
    """Return a random OpenTelemetry span id (16 hex digits): one per agent invocation."""
    return secrets.token_hex(8)
