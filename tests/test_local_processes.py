"""The local backend's worker processes: the lines and events threads of one process give, from the dist the parent
verified, no task lost or run twice when a worker dies, and nothing left behind when a batch is stopped."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from conftest import TESTBED, copy_project
from wasm_agents.backends import POLL_S, Local, run_tasks
from wasm_agents.backends.local import MIN_TASKS_FOR_WORKERS, worker_count
from wasm_agents.backends.workers import LEAVE_S
from wasm_agents.build import build
from wasm_agents.console import ConsoleEvents
from wasm_agents.errors import VerificationError
from wasm_agents.events import Events
from wasm_agents.timeline import Recorder

CLI = [sys.executable, "-m", "wasm_agents"]
DEEP = {"id": "deep", "op": "to", "target": "echo", "inner": {"op": "to", "target": "fuel", "inner": {}}}
MIXED = [
    {"id": "add", "op": "add", "a": 2, "b": 3},
    {"id": "next", "op": "next", "inner": {"op": "multiply", "a": 6, "b": 7}},
    {"id": "log", "op": "log"},
    {"id": "raise", "op": "raise"},
    {"id": "memory", "op": "memory"},
    {"id": "recurse", "op": "recurse"},
    {"id": "exit", "op": "exit"},
    {"id": "forbidden", "op": "to", "target": "fuel", "inner": {"op": "to", "target": "echo", "inner": {}}},
    {"id": "fuel", "op": "to", "target": "fuel", "inner": {"op": "loop"}},
    {"id": "scratch", "op": "to", "target": "echo", "inner": {"op": "scratch"}},
    DEEP,
    {"op": "config"},
]
WRITER = """
import os
n = 0
while True:
    n += 1
    with open(f"/scratch/f{n % 50}", "w") as handle:
        handle.write("x" * 1000)
"""


@pytest.fixture(scope="module")
def deep_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The testbed with chains two agents deep (agent -> echo -> fuel), so a console has depths to get right."""
    project = copy_project(TESTBED, tmp_path_factory.mktemp("deep") / "testbed")
    policy = project / "wasm-agents.toml"
    policy.write_text(re.sub(r"(?m)^max_depth = .*$", "max_depth = 2", policy.read_text()))
    return build(project).dist


def lines_of(dist: Path, tasks: list, workers: int, events: Events | None = None) -> list[dict]:
    """Every line of a batch, in task order."""
    return sorted(run_tasks(dist, tasks, Local(2, workers), events=events), key=lambda line: line["index"])


def comparable(line: dict) -> dict:
    """A line without what differs from run to run (ids, timings)."""
    kept = {k: v for k, v in line.items() if k not in ("run_id", "duration_ms")}
    kept["hops"] = [{k: v for k, v in hop.items() if k not in ("span_id", "parent_span_id", "duration_ms")} for hop in line["hops"]]
    if "error" in kept:
        kept["error"] = {k: v for k, v in kept["error"].items() if k != "traceback"}
    return kept


def worker_pids() -> set[int]:
    """The worker processes this process has started and that still run."""
    pids = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{os.getpid()}\n" in text and b"wasm_agents.backends.workers" in command and "State:\tZ" not in text:
            pids.add(int(status.parent.name))
    return pids


def test_workers_give_the_lines_threads_give(deep_dist):
    threads = lines_of(deep_dist, MIXED, workers=0)
    workers = lines_of(deep_dist, MIXED, workers=2)
    assert [comparable(line) for line in workers] == [comparable(line) for line in threads]
    by_id = {line.get("id"): line for line in workers}
    assert by_id["next"]["result"] == 42 and by_id["deep"]["result"] == {"fuel": "ok"}
    assert by_id["recurse"]["error"]["type"] == "stack" and by_id["memory"]["error"]["type"] == "memory"
    assert by_id["scratch"]["result"] == {"before": [], "read": "written"}
    assert worker_pids() == set()  # a finished batch waits for its workers to leave


def test_workers_run_only_the_tasks_asked_for(deep_dist):
    tasks = [{"id": i, "op": "add", "a": i, "b": 1} for i in range(6)]
    lines = run_tasks(deep_dist, tasks, Local(2, workers=2), indexes=[1, 4, 5])  # as --resume asks
    assert sorted((line["index"], line["id"], line["result"]) for line in lines) == [(1, 1, 2), (4, 4, 5), (5, 5, 6)]


def test_events_of_workers_are_those_of_threads_with_their_fields(deep_dist):
    def chains(workers: int) -> dict:
        stream = io.StringIO()
        lines = lines_of(deep_dist, MIXED, workers, Events(stream, "debug"))
        task_of = {line["run_id"]: line["index"] for line in lines}
        events: dict[int, list] = {}
        for text in stream.getvalue().splitlines():
            event = json.loads(text)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["timestamp"])
            shape = (event["event.name"], event.get("agent"), event["severity_text"], event["severity_number"], sorted(event))
            events.setdefault(task_of[event["trace_id"]], []).append(shape)
        return events

    threads, workers = chains(0), chains(2)
    assert workers == threads
    assert ("agent.log", "agent", "WARNING", 13, ["agent", "attributes", "body", "event.name", "severity_number",
                                                   "severity_text", "span_id", "timestamp", "trace_id"]) in workers[2]


def test_a_console_indents_the_agents_of_workers_by_their_depth(deep_dist):
    output = io.StringIO()
    events = ConsoleEvents(Console(file=output, width=200), "info")  # agent.start is not shown, but gives the depth
    lines_of(deep_dist, [DEEP, {"op": "add", "a": 1, "b": 1}], workers=2, events=events)
    done = [line.split(" INFO")[0] for line in output.getvalue().splitlines() if " done " in line]
    assert sorted(who.split(" ", 1)[1].rstrip() for who in done) == ["    fuel", "  echo", "agent", "agent"]


def test_a_trace_of_workers_records_every_chain_at_debug_level_whatever_the_run_shows(deep_dist):
    shown = io.StringIO()
    recorder = Recorder(Events(shown, "error"))
    lines = lines_of(deep_dist, MIXED, workers=2, events=recorder)
    chains = {chain.trace_id: chain for chain in recorder.timeline("test").chains}
    assert len(chains) == len(MIXED)
    assert all(len(chains[line["run_id"]].hops) == len(line["hops"]) for line in lines)
    assert {json.loads(text)["severity_text"] for text in shown.getvalue().splitlines()} == {"ERROR"}


def test_a_dist_changed_before_the_batch_is_refused_and_no_worker_runs_it(deep_dist, tmp_path):
    dist = shutil.copytree(deep_dist, tmp_path / "dist")
    component = dist / "components" / "echo.wasm"
    data = bytearray(component.read_bytes())
    data[1000] ^= 1
    component.write_bytes(bytes(data))
    lines = run_tasks(dist, [{"op": "add", "a": 1, "b": 1}] * 4, Local(2, workers=2))
    with pytest.raises(VerificationError, match="components/echo.wasm: sha256 mismatch"):
        next(lines)
    time.sleep(LEAVE_S)
    assert worker_pids() == set()
    (tmp_path / "tasks.jsonl").write_text('{"op": "add", "a": 1, "b": 1}\n' * 4)
    done = subprocess.run([*CLI, "run", str(dist), "--task-file", str(tmp_path / "tasks.jsonl"), "-j", "2", "--workers", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and done.stdout == ""
    [error] = done.stderr.splitlines()  # nothing from the workers, told to leave before they had a dist
    assert error.startswith("error: components/echo.wasm: sha256 mismatch")


def test_a_killed_worker_fails_the_tasks_it_held_only_and_another_takes_its_place(deep_dist):
    stream = io.StringIO()
    tasks = [{"id": i, "op": "sleep", "seconds": 0.3} for i in range(12)]
    lines = []
    for line in run_tasks(deep_dist, tasks, Local(2, workers=2), events=Events(stream, "warning")):
        lines.append(line)
        if len(lines) == 4:  # both workers have run chains by now (one that dies before its first is a failed start)
            os.kill(min(worker_pids()), signal.SIGKILL)
    assert sorted(line["index"] for line in lines) == list(range(12))  # none lost, none twice
    lost = [line for line in lines if not line["ok"]]
    assert lost and all(line["error"]["type"] == "WorkerLost" and "ended with exit code -9" in line["error"]["message"] for line in lost)
    assert all(line["result"] == "slept" for line in lines if line["ok"])
    assert len(lost) == 1  # the one it was running
    assert stream.getvalue().count('"worker.task.lost"') == len(lost)


def test_stopping_hands_over_the_finished_lines_at_once_and_the_workers_stop_their_guests(deep_dist, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the workers' scratch folders, to see them go
    busy = [{"op": "loop"}, {"op": "to", "target": "echo", "inner": {"op": "exec", "code": WRITER}}]
    tasks = [*busy, *({"op": "add", "a": i, "b": 0} for i in range(6))]
    stop = threading.Event()
    lines = run_tasks(deep_dist, tasks, Local(4, workers=2), stop=stop)
    finished = []
    for line in lines:
        finished.append(line["index"])
        if len(finished) == 6:
            until = time.monotonic() + 4  # the writer has 5 s of wall time
            while not list(tmp_path.glob("wasm-agents-scratch-*/*")) and time.monotonic() < until:
                time.sleep(0.01)
            assert list(tmp_path.glob("wasm-agents-scratch-*/*")), "the writer is not running"
            stop.set()
            stopped = time.monotonic()
    assert time.monotonic() - stopped < POLL_S + 0.5
    assert sorted(finished) == list(range(2, 8))
    until = time.monotonic() + LEAVE_S + 1
    while (worker_pids() or list(tmp_path.glob("wasm-agents-scratch-*/*"))) and time.monotonic() < until:
        time.sleep(0.05)
    assert worker_pids() == set() and list(tmp_path.glob("wasm-agents-scratch-*/*")) == []


def test_run_spreads_a_batch_over_workers_with_the_same_output(deep_dist, tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in MIXED))
    outputs = []
    for workers in ("0", "2"):
        done = subprocess.run([*CLI, "run", str(deep_dist), "--task-file", str(path), "-j", "2", "--workers", workers, "--log-level", "error"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr[-2000:]
        outputs.append([comparable(json.loads(line)) for line in done.stdout.splitlines()])
    assert outputs[0] == outputs[1] and [line["index"] for line in outputs[1]] == list(range(len(MIXED)))


def test_a_single_task_runs_in_this_process_and_a_batch_in_one_worker_per_core():
    cores = os.cpu_count() or 1
    assert worker_count(Local(8, workers=4), 1) == 0
    assert worker_count(Local(8, workers=4), 3) == 3
    assert worker_count(Local(1), 10_000) == 0  # one chain at a time: one worker would be no faster
    assert worker_count(Local(8), MIN_TASKS_FOR_WORKERS - 1) == 0
    assert worker_count(Local(8), MIN_TASKS_FOR_WORKERS) == (min(cores, 8) if cores > 1 else 0)
    assert worker_count(Local(8, workers=0), 10_000) == 0


@pytest.mark.parametrize("options, words", [
    ({"concurrency": 0}, "Local: concurrency must be at least 1, got 0"),
    ({"workers": -1}, "Local: workers must be 0 (this process) or more, got -1"),
])
def test_local_options_are_checked(options, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        Local(**options)
