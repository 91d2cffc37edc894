"""The Ray backend gives the same lines as the local one, survives a dying worker, and verifies on workers."""

import hashlib
import os
import shutil
import signal

import pytest

ray = pytest.importorskip("ray")

from wasm_agents.backends import run_tasks  # noqa: E402
from wasm_agents.errors import VerificationError  # noqa: E402
from wasm_agents.events import Events  # noqa: E402

pytestmark = pytest.mark.ray

MIXED = [
    {"id": "add", "op": "add", "a": 2, "b": 3},
    {"id": "next", "op": "next", "inner": {"op": "multiply", "a": 6, "b": 7}},
    {"id": "raise", "op": "raise"},
    {"id": "loop", "op": "loop"},
    {"id": "memory", "op": "memory"},
    {"id": "forbidden", "op": "to", "target": "fuel", "inner": {"op": "to", "target": "echo", "inner": {}}},
    {"id": "fuel", "op": "to", "target": "fuel", "inner": {"op": "loop"}},
    {"op": "config"},
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def comparable(line: dict) -> dict:
    """A line without what differs from run to run (ids, timings, which worker)."""
    kept = {k: v for k, v in line.items() if k not in ("run_id", "duration_ms", "hops", "worker", "attempts")}
    if "error" in kept:
        kept["error"] = {k: v for k, v in kept["error"].items() if k != "traceback"}
    return kept


def test_ray_and_local_give_identical_lines(testbed_dist, local_ray):
    local = list(run_tasks(testbed_dist, MIXED, backend="local", events=Events(None), concurrency=2))
    distributed = list(run_tasks(testbed_dist, MIXED, backend="ray", events=Events(None)))
    assert [comparable(line) for line in distributed] == [comparable(line) for line in local]
    assert [line["index"] for line in distributed] == list(range(len(MIXED)))
    assert distributed[1]["result"] == 42 and distributed[3]["error"]["type"] == "timeout"
    assert all(line["worker"]["node_id"] for line in distributed)


def test_a_killed_worker_loses_no_task_and_duplicates_none(testbed_dist, local_ray):
    tasks = [{"id": i, "op": "sleep", "seconds": 0.2} for i in range(16)]
    lines = []
    for line in run_tasks(testbed_dist, tasks, backend="ray", events=Events(None), retries=2):
        if not lines:
            os.kill(line["worker"]["pid"], signal.SIGKILL)  # the worker that answered first dies mid-run
        lines.append(line)
    assert [line["id"] for line in lines] == list(range(16))
    assert all(line["ok"] and line["result"] == "slept" for line in lines)
    assert any(line.get("attempts", 1) > 1 for line in lines)


def test_each_worker_verifies_the_dist_itself(testbed_dist, local_ray, tmp_path):
    dist = shutil.copytree(testbed_dist, tmp_path / "dist")
    component = dist / "components" / "echo.wasm"
    data = bytearray(component.read_bytes())
    data[1000] ^= 1
    component.write_bytes(bytes(data))
    with pytest.raises(VerificationError) as refused:
        list(run_tasks(dist, MIXED[:1], backend="ray", events=Events(None)))
    assert "worker on node" in str(refused.value) and "components/echo.wasm" in str(refused.value)


def test_a_bundle_changed_in_transit_is_refused(testbed_dist, local_ray):
    from wasm_agents.backends.ray import ChainWorker, _bundle

    bundle = _bundle(testbed_dist)
    worker = ChainWorker.remote(bundle[:-1] + bytes([bundle[-1] ^ 1]), hashlib.sha256(bundle).hexdigest(), {})
    problems = ray.get(worker.ready.remote())["problems"]
    ray.kill(worker)
    assert problems and "sha256 mismatch in transit" in problems[0]
