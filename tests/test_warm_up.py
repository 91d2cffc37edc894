"""A sandbox made ahead of its task is warmed up by the harness, in code the agent's module-level code may have
changed: the warm-up stays bounded, its host calls reach no one, and the agent's tasks run as they would without it."""

import io
import json
import threading
from pathlib import Path

import pytest

from conftest import copy_project
from wasm_agents.build import build
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner

SABOTAGE = Path(__file__).resolve().parent / "projects" / "sabotage"


@pytest.fixture(scope="module")
def sabotage_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(copy_project(SABOTAGE, tmp_path_factory.mktemp("sabotage") / "sabotage")).dist


def test_a_warm_up_that_never_ends_does_not_hold_the_host(sabotage_dist: Path) -> None:
    stream = io.StringIO()
    runner = Runner(sabotage_dist, Events(stream, "debug"), warm=2)
    results = [runner.run({"n": index}) for index in range(3)]
    closing = threading.Thread(target=runner.close)
    closing.start()
    closing.join(timeout=120)  # a hang, not a speed: one warm-up of at most 2 s, then none
    assert not closing.is_alive(), "Runner.close() is still waiting for a warm-up"
    assert [result.result for result in results] == [{"n": 0}, {"n": 1}, {"n": 2}]
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    logs = [event for event in events if event["event.name"] == "agent.log"]
    # The warm-up's own log record and delegation were answered idly: only the tasks' records are events.
    assert [event.get("body") for event in logs] == ["echoing"] * 3
    assert not [event for event in events if event["event.name"].startswith("delegation")]
