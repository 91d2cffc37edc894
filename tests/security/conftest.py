"""The hostile project, built once per session from a copy, and one Runner over it."""

import io
import json
import threading
from pathlib import Path

import pytest

from conftest import copy_project  # tests/conftest.py: this folder is a package, so this conftest is security.conftest
from wasm_agents.build import build
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner

HOSTILE = Path(__file__).resolve().parent / "projects" / "hostile"


class CapturedEvents(Events):
    """Events kept in memory so tests can look at what the host emitted for a guest."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.lock = threading.Lock()
        super().__init__(self.buffer, "debug")

    def mark(self) -> int:
        with self.lock:
            return len(self.buffer.getvalue())

    def since(self, mark: int) -> list[dict]:
        with self.lock:
            text = self.buffer.getvalue()[mark:]
        return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="session")
def hostile_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(HOSTILE, tmp_path_factory.mktemp("hostile") / "hostile")
    build(project)
    return project


@pytest.fixture(scope="session")
def hostile_dist(hostile_project: Path) -> Path:
    return hostile_project / "dist"


@pytest.fixture(scope="session")
def hostile_events() -> CapturedEvents:
    return CapturedEvents()


@pytest.fixture(scope="session")
def hostile_runner(hostile_dist: Path, hostile_events: CapturedEvents):
    with Runner(hostile_dist, events=hostile_events) as runner:
        yield runner


def probe(runner: Runner, op: str, arg=None) -> dict:
    """Run one probe op; it reports {"value": ...} or {"error": <exception type the guest saw>, ...}."""
    result = runner.run({"op": op, "arg": arg})
    assert result.ok, f"probe {op} ended its invocation: {result.error}"
    return result.result


def healthy(runner: Runner) -> bool:
    """The host still answers a well-behaved chain, through both agents."""
    direct = runner.run({"op": "echo", "index": 7})
    helped = runner.run({"op": "helper", "inner": {"op": "echo", "n": 1}})
    return direct.ok and direct.result == {"index": 7, "square": 49} and helped.ok and helped.result == {"echo": {"op": "echo", "n": 1}}
