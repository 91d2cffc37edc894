"""Ctrl-C during a batch: every finished result is printed, running guests are stopped, the process leaves at once."""

import ctypes
import io
import json
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import TESTBED, copy_project
from wasm_agents.build import build
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner
from wasm_agents.sandbox.guests import STOP_ADVANCE_S, STOP_WAIT_S, Guests
from wasm_agents.sandbox.invocation import STOPPED

CLI = [sys.executable, "-m", "wasm_agents"]
EXIT_WITHIN_S = 2.0  # from the signal to the process's end, results printed and scratch folders removed

# Slow guests, each saying so once it runs: busy on the CPU, asleep in a WASI call, writing files in its scratch folder.
RUNNING = "from wasm_agents_sdk import log\nlog('warning', 'running')\n"
BUSY = RUNNING + "while True:\n    pass\n"
ASLEEP = RUNNING + "import time\ntime.sleep(60)\n"
WRITER = RUNNING + """
import os
n = 0
while True:
    n += 1
    os.makedirs(f"/scratch/d{n % 50}", exist_ok=True)
    with open(f"/scratch/d{n % 50}/f{n}", "w") as handle:
        handle.write("x")
"""
SLOW = {
    "busy": {"op": "exec", "code": BUSY},
    "asleep": {"op": "exec", "code": ASLEEP},
    "writing": {"op": "to", "target": "echo", "inner": {"op": "exec", "code": WRITER}},
}


@pytest.fixture(scope="module")
def patient_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The testbed with a minute of wall time for its agents and chains: a slow task is still running when Ctrl-C comes."""
    project = copy_project(TESTBED, tmp_path_factory.mktemp("patient") / "testbed")
    for toml in (project / "wasm-agents.toml", project / "agent" / "agent.toml", project / "agent-echo" / "agent.toml"):
        toml.write_text(re.sub(r"(?m)^wall_time_s = .*$", "wall_time_s = 60", toml.read_text()))
    return build(project).dist


def send_sigint(pid: int, to_thread: bool) -> None:
    """SIGINT to the process, or to one of its threads other than the main one: the kernel may hand it to any thread."""
    if not to_thread:
        os.kill(pid, signal.SIGINT)
        return
    if not Path("/proc/self/task").is_dir():
        pytest.skip("no /proc/PID/task to name a thread by")
    for task in sorted(Path(f"/proc/{pid}/task").iterdir(), key=lambda task: -int(task.name)):
        try:
            blocked = int(re.search(r"SigBlk:\s*([0-9a-f]+)", (task / "status").read_text())[1], 16)
        except OSError:
            continue  # the thread ended meanwhile
        if int(task.name) != pid and not blocked & 1 << (signal.SIGINT - 1):
            if ctypes.CDLL(None, use_errno=True).tgkill(pid, int(task.name), signal.SIGINT) == 0:
                return
    raise AssertionError("no thread but the main one takes SIGINT")


def interrupt(
    dist: Path, tmp_path: Path, slow: dict, *options: str, terminal: bool = False, to_thread: bool = False, finishing: int = 7,
    env: dict[str, str] | None = None,
) -> dict:
    """Run a batch with `slow` second among seven fast tasks, send SIGINT once `finishing` of them have finished, and report."""
    tasks = [{"id": 0, "op": "add", "a": 0, "b": 1}, {"id": 1, **slow}, *({"id": i, "op": "add", "a": i, "b": 1} for i in range(2, 8))]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(task) + "\n" for task in tasks))
    saved = tmp_path / "saved.jsonl"  # each result as soon as it finishes: what must be printed
    args = [*CLI, "run", str(dist), "--task-file", str(tmp_path / "tasks.jsonl"), "-j", "2", "--output", str(saved), *options]
    master, slave = pty.openpty() if terminal else (None, None)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave or subprocess.PIPE, text=True, env=env)
    shown = b""
    if terminal:
        os.close(slave)

        def read_terminal() -> None:
            nonlocal shown
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed its end
                    return
                if not chunk:
                    return
                shown += chunk

        reader = threading.Thread(target=read_terminal)
        reader.start()
    until = time.monotonic() + 120
    while (not saved.exists() or saved.read_text().count("\n") < finishing) and time.monotonic() < until:
        time.sleep(0.02)
    assert saved.read_text().count("\n") == finishing, "the fast tasks did not finish"
    signalled = time.monotonic()
    send_sigint(process.pid, to_thread)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    waited = time.monotonic() - signalled
    if terminal:
        reader.join()
        os.close(master)
    scratch = list(Path(tempfile.gettempdir()).glob(f"wasm-agents-scratch-{process.pid}-*"))
    return {
        "code": process.returncode, "waited": waited, "stderr": stderr or shown.decode(errors="replace"), "scratch": scratch,
        "printed": [json.loads(line)["id"] for line in stdout.splitlines()],
        "saved": [json.loads(line)["id"] for line in saved.read_text().splitlines()],
    }


@pytest.mark.slow
@pytest.mark.parametrize("to_thread", [False, True], ids=["to-process", "to-another-thread"])
@pytest.mark.parametrize("slow", SLOW)
def test_ctrl_c_prints_every_finished_result_in_order_and_leaves_at_once(patient_dist, tmp_path, slow, to_thread):
    run = interrupt(patient_dist, tmp_path, SLOW[slow], "--log-level", "error", to_thread=to_thread)
    assert run["code"] == 130, run["stderr"][-2000:]
    assert run["printed"] == [0, 2, 3, 4, 5, 6, 7]  # the five behind the slow task too, in task order
    assert sorted(run["saved"]) == run["printed"]
    assert run["waited"] < EXIT_WITHIN_S, f"left {run['waited']:.2f} s after the signal"
    assert run["scratch"] == []  # a guest still writing in its scratch folder was stopped before the folder was removed


@pytest.mark.slow
@pytest.mark.parametrize("slow", SLOW)
def test_ctrl_c_with_worker_processes_prints_every_finished_result_in_order_and_leaves_at_once(patient_dist, tmp_path, slow):
    temp = tmp_path / "temp"  # where this run's processes, its workers too, make their scratch folders
    temp.mkdir()
    run = interrupt(patient_dist, tmp_path, SLOW[slow], "--workers", "2", "--log-level", "error", env={**os.environ, "TMPDIR": str(temp)})
    assert run["code"] == 130, run["stderr"][-2000:]
    assert run["printed"] == [0, 2, 3, 4, 5, 6, 7]  # the slow task's worker took no other: the rest ran in the other one
    assert sorted(run["saved"]) == run["printed"]
    assert run["waited"] < EXIT_WITHIN_S, f"left {run['waited']:.2f} s after the signal"  # the workers' stderr closed too
    assert list(temp.iterdir()) == []  # the workers stopped their guests, then removed their scratch folders


@pytest.mark.slow
def test_ctrl_c_with_unordered_results_prints_the_rest_and_a_summary_on_a_terminal(patient_dist, tmp_path):
    run = interrupt(patient_dist, tmp_path, SLOW["busy"], "--unordered", "--log-level", "error", terminal=True)
    assert run["code"] == 130 and run["waited"] < EXIT_WITHIN_S
    assert sorted(run["printed"]) == sorted(run["saved"]) == [0, 2, 3, 4, 5, 6, 7]
    assert re.search(r"8 tasks: 7 ok, 0 failed, stopped after 7 of 8 in [\d.]+ s", run["stderr"]), run["stderr"][-2000:]


@pytest.mark.slow
@pytest.mark.ray
def test_ctrl_c_on_ray_stops_the_guests_of_the_workers(patient_dist, tmp_path):
    pytest.importorskip("ray")
    # Two workers, a task per call, two calls queued per worker: task 3 waits behind the busy one and never runs.
    options = ("--backend", "ray", "--ray-workers", "2", "--log-level", "error")
    run = interrupt(patient_dist, tmp_path, SLOW["busy"], *options, finishing=6)
    assert run["code"] == 130, run["stderr"][-2000:]
    assert run["printed"] == sorted(run["saved"]) == [0, 2, 4, 5, 6, 7]
    # A worker's close runs beside the batch it is busy with and stops its guests (it used to wait 10 s, then be
    # killed); what is left is Ray's own shutdown, ~1.5 s.
    assert run["waited"] < 5, f"left {run['waited']:.2f} s after the signal"


class Running(io.StringIO):
    """An event stream that tells when a guest said it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.said = threading.Event()

    def write(self, text: str) -> int:
        if '"running"' in text:
            self.said.set()
        return super().write(text)


@pytest.mark.slow
@pytest.mark.parametrize("slow", ["busy", "writing"])
def test_stopping_the_guests_ends_a_running_chain_and_starts_no_other(patient_dist, slow):
    guests = Guests(4)  # of this Runner only: stopping them leaves the other tests' guests alone
    stream = Running()
    with Runner(patient_dist, Events(stream), warm=0, guests=guests) as runner:
        results = []
        chain = threading.Thread(target=lambda: results.append(runner.run(SLOW[slow])))
        chain.start()
        assert stream.said.wait(60)
        stopping = time.monotonic()
        guests.stop()
        assert time.monotonic() - stopping < STOP_ADVANCE_S + STOP_WAIT_S and not guests.active
        chain.join(timeout=5)
        assert results and not results[0].ok and results[0].failure.message == STOPPED
        later = runner.run({"op": "add", "a": 1, "b": 1})
        assert not later.ok and later.failure.message == STOPPED


@pytest.mark.slow
def test_stopping_waits_for_a_guest_asleep_in_a_wasi_call_only_so_long(patient_dist):
    guests = Guests(4)
    stream = Running()
    with Runner(patient_dist, Events(stream), warm=0, guests=guests) as runner:
        threading.Thread(target=runner.run, args=(SLOW["asleep"],), daemon=True).start()
        assert stream.said.wait(60)
        time.sleep(0.1)  # from its log call into its sleep
        stopping = time.monotonic()
        guests.stop()
        assert time.monotonic() - stopping < STOP_ADVANCE_S + STOP_WAIT_S + 0.5
        assert len(guests.active) == 1  # it ends when its sleep does; the process leaving does not wait for that
