"""The Ray backend gives the same lines as the local one, survives a dying worker, and verifies on workers.

Ray runs in child processes here: ray.init installs crash handlers for SIGSEGV/SIGILL over the ones
wasmtime traps with, so a process that has initialised Ray must not run guests itself (its workers do).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

pytest.importorskip("ray")

pytestmark = pytest.mark.ray

CLI = [sys.executable, "-m", "wasm_agents"]

MIXED = [
    {"id": "add", "op": "add", "a": 2, "b": 3},
    {"id": "next", "op": "next", "inner": {"op": "multiply", "a": 6, "b": 7}},
    {"id": "raise", "op": "raise"},
    {"id": "loop", "op": "loop"},
    {"id": "memory", "op": "memory"},
    {"id": "recurse", "op": "recurse"},
    {"id": "exit", "op": "exit"},
    {"id": "forbidden", "op": "to", "target": "fuel", "inner": {"op": "to", "target": "echo", "inner": {}}},
    {"id": "fuel", "op": "to", "target": "fuel", "inner": {"op": "loop"}},
    {"op": "config"},
]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "run", *args], capture_output=True, text=True, timeout=600)


def task_file(tmp_path, tasks) -> str:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in tasks))
    return str(path)


def comparable(line: dict) -> dict:
    """A line without what differs from run to run (ids, timings, which worker)."""
    kept = {k: v for k, v in line.items() if k not in ("run_id", "duration_ms", "hops", "worker", "attempts")}
    if "error" in kept:
        kept["error"] = {k: v for k, v in kept["error"].items() if k != "traceback"}
    return kept


def test_ray_and_local_give_identical_lines(testbed_dist, tmp_path):
    tasks = task_file(tmp_path, MIXED)
    local = run_cli(str(testbed_dist), "--task-file", tasks, "-j", "2", "--log-level", "error")
    distributed = run_cli(str(testbed_dist), "--task-file", tasks, "--backend", "ray", "--log-level", "error")
    assert local.returncode == distributed.returncode == 1, distributed.stderr[-2000:]
    local_lines = [json.loads(line) for line in local.stdout.splitlines()]
    ray_lines = [json.loads(line) for line in distributed.stdout.splitlines()]
    assert [comparable(line) for line in ray_lines] == [comparable(line) for line in local_lines]
    by_id = {line.get("id"): line for line in ray_lines}
    assert by_id["next"]["result"] == 42 and by_id["loop"]["error"]["type"] == "timeout"
    assert by_id["recurse"]["error"]["type"] == "stack"  # wasm traps work inside Ray workers
    assert all(line["worker"]["node_id"] and "attempts" not in line for line in ray_lines)


def test_a_killed_worker_loses_no_task_and_duplicates_none(testbed_dist, tmp_path):
    tasks = task_file(tmp_path, [{"id": i, "op": "sleep", "seconds": 0.2} for i in range(16)])
    process = subprocess.Popen(
        [*CLI, "run", str(testbed_dist), "--task-file", tasks, "--backend", "ray", "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = []
    for raw in process.stdout:
        line = json.loads(raw)
        if not lines:
            os.kill(line["worker"]["pid"], signal.SIGKILL)  # the worker that answered first dies mid-run
        lines.append(line)
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 0, stderr[-2000:]
    assert [line["id"] for line in lines] == list(range(16))
    assert all(line["ok"] and line["result"] == "slept" for line in lines)
    assert any(line.get("attempts", 1) > 1 for line in lines)
    assert "ray.task.lost" in stderr


def test_each_worker_verifies_the_dist_itself(testbed_dist, tmp_path):
    dist = shutil.copytree(testbed_dist, tmp_path / "dist")
    component = dist / "components" / "echo.wasm"
    data = bytearray(component.read_bytes())
    data[1000] ^= 1
    component.write_bytes(bytes(data))
    done = run_cli(str(dist), "--task", '{"op": "add", "a": 1, "b": 1}', "--backend", "ray")
    assert done.returncode == 3 and done.stdout == ""
    assert "worker on node" in done.stderr and "components/echo.wasm: sha256 mismatch" in done.stderr


def test_signature_policy_holds_on_every_worker(example_project, tmp_path):
    from wasm_agents.build import build
    from wasm_agents.artifacts.signing import generate_keypair

    generate_keypair(tmp_path / "release")
    generate_keypair(tmp_path / "other")
    signed = build(example_project, tmp_path / "dist", signing_key=tmp_path / "release.key").dist
    task = ("--task", '{"op": "multiply", "a": 6, "b": 7}', "--backend", "ray", "--log-level", "error")
    trusted = run_cli(str(signed), *task, "--trusted-key", str(tmp_path / "release.pub"))
    assert trusted.returncode == 0 and json.loads(trusted.stdout)["result"] == 42
    refused = run_cli(str(signed), *task, "--trusted-key", str(tmp_path / "other.pub"))
    assert refused.returncode == 3 and "worker on node" in refused.stderr and "not trusted" in refused.stderr


def test_a_bundle_changed_in_transit_is_refused(testbed_dist):
    script = f"""
import hashlib, ray
from pathlib import Path
from wasm_agents.backends.ray import ChainWorker, _bundle
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
bundle = _bundle(Path({str(testbed_dist)!r}))
worker = ChainWorker.remote(bundle[:-1] + bytes([bundle[-1] ^ 1]), hashlib.sha256(bundle).hexdigest(), None, "info")
print(ray.get(worker.ready.remote())["problems"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert "sha256 mismatch in transit" in done.stdout, done.stderr[-2000:]


def test_ctrl_c_cancels_outstanding_tasks_keeps_finished_results_and_resumes(testbed_dist, tmp_path):
    tasks = task_file(tmp_path, [{"id": i, "op": "sleep", "seconds": 1} for i in range(60)])
    out = tmp_path / "out.jsonl"
    command = [*CLI, "run", str(testbed_dist), "--task-file", tasks, "--backend", "ray", "--log-level", "error", "--output", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()  # the workers are up and running tasks
    process.send_signal(signal.SIGINT)
    # Read on through this file object: lines come in batches, and the next may already sit in its buffer.
    killer = threading.Timer(60, process.kill)
    killer.start()
    rest, stderr = process.stdout.read(), process.stderr.read()
    killer.cancel()
    process.wait()
    assert process.returncode == 130, stderr[-2000:]
    ids = [json.loads(line)["id"] for line in [first, *rest.splitlines()]]
    assert len(ids) < 60 and ids == sorted(set(ids))  # every finished task once, in task order
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == sorted(ids)
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(json.loads(line)["id"] for line in resumed.stdout.splitlines()) == sorted(set(range(60)) - set(ids))
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == list(range(60))