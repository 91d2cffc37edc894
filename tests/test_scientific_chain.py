"""Agents of the scientific runtime in a chain: built from their requirements, verified, run beside components.

Opt-in, as tests/test_scientific.py (WASM_AGENTS_SCIENTIFIC=1, `make scientific`): the first run on a host
downloads the runtime (~100 MB) and compiles it (minutes).
"""

import json
import os
import random
from pathlib import Path

import pytest

from conftest import copy_project
from wasm_agents.artifacts.layout import COMPONENTS, SCIENTIFIC_ARTIFACT, image_path
from wasm_agents.build import build
from wasm_agents.errors import BuildError, VendorError, VerificationError
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner

pytestmark = pytest.mark.skipif(
    os.environ.get("WASM_AGENTS_SCIENTIFIC") != "1", reason="downloads and compiles the scientific runtime: set WASM_AGENTS_SCIENTIFIC=1 (make scientific)"
)

PROJECT = Path(__file__).resolve().parent / "projects" / "scientific"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_project(PROJECT, tmp_path_factory.mktemp("scientific") / "scientific")
    build(project)
    return project


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return []


@pytest.fixture(scope="module")
def runner(project: Path, events: list[dict]):
    class Kept(Events):
        def emit(self, name, level, *, budget=None, **fields):
            events.append({"name": name, **fields})
            return super().emit(name, level, budget=budget, **fields)

    with Runner(project / "dist", Kept(None)) as runner:
        yield runner


def analyst(runner: Runner, task: dict):
    result = runner.run(task)
    assert result.ok, result.error
    return result.result["analyst"]


def test_the_dist_holds_the_runtime_once_an_image_for_the_scientific_agent_and_components_for_the_others(project: Path) -> None:
    manifest = json.loads((project / "dist" / "manifest.json").read_text())
    assert manifest["project"]["agents"]["analyst"]["runtime"] == "scientific"
    assert "runtime" not in manifest["project"]["agents"]["agent"]
    files = set(manifest["files"])
    assert {SCIENTIFIC_ARTIFACT, image_path("analyst"), f"{COMPONENTS}/agent.wasm", f"{COMPONENTS}/formatter.wasm"} <= files
    assert f"{COMPONENTS}/analyst.wasm" not in files
    lock = (project / "agent-analyst" / "requirements.lock").read_text()
    assert "# numpy==2.5.2 is built into the scientific runtime" in lock and "--hash" not in lock


def test_numpy_solve_in_the_chain_equals_native_numpy(runner: Runner) -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(3)
    a = [[rng.uniform(-1, 1) + (30 if i == j else 0) for j in range(30)] for i in range(30)]
    b = [rng.uniform(-1, 1) for _ in range(30)]
    x = analyst(runner, {"op": "solve", "a": a, "b": b})
    assert np.allclose(x, np.linalg.solve(np.array(a), np.array(b)), rtol=0, atol=1e-9)


def test_pandas_groupby_in_the_chain_equals_native_pandas(runner: Runner) -> None:
    pd = pytest.importorskip("pandas")
    rows = [{"key": f"k{i % 5}", "value": (i * 7919 % 1000) / 7} for i in range(500)]
    got = analyst(runner, {"op": "groupby", "rows": rows})
    native = pd.DataFrame(rows).groupby("key")["value"].agg(["sum", "mean", "std"])
    for key, row in native.iterrows():
        assert got[key] == pytest.approx([row["sum"], row["mean"], row["std"]], abs=1e-9)


def test_each_invocation_is_a_fresh_instance_with_fresh_random_state(runner: Runner) -> None:
    first, second = analyst(runner, {"op": "fresh"}), analyst(runner, {"op": "fresh"})
    assert first["calls"] == second["calls"] == 1
    assert first["modules"] is True  # imported at build time, in the image
    assert first["random"] != second["random"] and first["numpy"] != second["numpy"]


def test_the_scientific_agent_delegates_to_a_component_and_back(runner: Runner) -> None:
    assert analyst(runner, {"op": "format"}) == ["0.000", "0.500", "1.000"]


def test_logs_and_output_are_the_agents_events(runner: Runner, events: list[dict]) -> None:
    before = len(events)
    assert analyst(runner, {"op": "log"}) == "logged"
    mine = [event for event in events[before:] if event.get("agent") == "analyst"]
    assert any(event["name"] == "agent.log" and event["body"] == "analysed" and event["attributes"] == {"rows": 3} for event in mine)
    assert any(event["name"] == "agent.log" and "through logging" in event["body"] for event in mine)
    assert any(event["name"] == "agent.stdout" and event["text"] == "to stdout" for event in mine)


def test_scratch_works(runner: Runner) -> None:
    assert analyst(runner, {"op": "scratch"}) == 3


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        ({"op": "busy"}, "timeout"),
        ({"op": "sleep"}, "timeout"),
        ({"op": "memory", "mb": 1024}, "memory"),
        ({"op": "flood"}, "output"),
        ({"op": "raise"}, "ValueError"),
    ],
    ids=["busy", "sleep", "memory", "flood", "raise"],
)
def test_limits_hold_and_failures_are_told_where_they_started(runner: Runner, task: dict, kind: str) -> None:
    result = runner.run(task)
    assert result.ok and result.result["refused"] == kind, result
    assert result.result["agent"] == "analyst"
    failed = [hop for hop in result.hops if hop.agent == "analyst"]
    assert failed and failed[0].error_type == kind


def test_a_changed_image_is_refused(project: Path, tmp_path: Path) -> None:
    import shutil

    dist = shutil.copytree(project / "dist", tmp_path / "dist")
    image = dist / image_path("analyst")
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 1
    image.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match=r"images/analyst.img: sha256 mismatch"):
        Runner(dist)


def test_a_pin_the_runtime_cannot_meet_fails_the_build(tmp_path: Path) -> None:
    project = copy_project(PROJECT, tmp_path / "pinned")
    (project / "agent-analyst" / "requirements.txt").write_text("numpy==1.24.0\n")
    with pytest.raises(VendorError, match=r"requirements.txt:1: numpy==1.24.0 cannot be met: the scientific runtime has numpy 2.5.2 built in"):
        build(project)


def test_requests_go_through_the_host_where_the_agent_is_allowed(project: Path, tmp_path: Path) -> None:
    from local_servers import Server

    server = Server()
    try:
        with Runner(project / "dist") as offline:
            refused = offline.run({"op": "fetch", "url": f"{server.url}/echo"}).result
        assert refused["refused"] == "URLError" and "has no network access" in refused["message"], refused
        assert server.seen == []  # no [network]: nothing left the sandbox
        allowed = copy_project(PROJECT, tmp_path / "allowed")
        toml = allowed / "agent-analyst" / "agent.toml"
        toml.write_text(f'{toml.read_text()}\n[network]\nallow = ["127.0.0.1:{server.port}"]\n')
        build(allowed)
        with Runner(allowed / "dist") as runner:
            assert analyst(runner, {"op": "fetch", "url": f"{server.url}/echo"}) == "GET"
        assert [seen["path"] for seen in server.seen] == ["/echo"]
    finally:
        server.close()


def test_an_import_that_fails_at_build_time_is_told_in_the_agents_terms(tmp_path: Path) -> None:
    project = copy_project(PROJECT, tmp_path / "broken")
    main = project / "agent-analyst" / "main.py"
    main.write_text(f"import numpy\nimport helpers_missing\n{main.read_text()}")
    with pytest.raises(BuildError) as error:
        build(project)
    assert str(error.value).splitlines() == [
        "agent 'analyst': importing agent-analyst/main.py failed at build time: ModuleNotFoundError: No module named 'helpers_missing'",
        "  agent-analyst/main.py:2: import helpers_missing",
        "  hint: 'helpers_missing' is neither in the stdlib nor in agent-analyst/requirements.txt: add the package that provides it",
    ]


def test_imports_beyond_the_memory_limit_fail_the_build(tmp_path: Path) -> None:
    project = copy_project(PROJECT, tmp_path / "tight")
    toml = project / "agent-analyst" / "agent.toml"
    toml.write_text(toml.read_text().replace("memory_mb = 512", "memory_mb = 48"))
    with pytest.raises(BuildError, match=r"^agent 'analyst': its imports take \d+ MiB of memory, more than its limit of 48 MiB \(raise \[limits\] memory_mb in agent-analyst/agent.toml\)$"):
        build(project)


def test_inspect_shows_the_image_and_worker_processes_run_the_chain(project: Path) -> None:
    from wasm_agents.backends import Local, run_tasks
    from wasm_agents.inspection import describe

    agents = describe(project / "dist")["agents"]
    assert agents["analyst"]["runtime"] == "scientific" and agents["analyst"]["image"]["path"] == image_path("analyst")
    assert "component" in agents["agent"] and "image" not in agents["agent"]
    tasks = [{"op": "solve", "a": [[2.0, 0.0], [0.0, 4.0]], "b": [2.0, float(n)]} for n in range(6)]
    lines = sorted(run_tasks(project / "dist", tasks, Local(concurrency=2, workers=2)), key=lambda line: line["index"])
    assert [line["result"]["analyst"] for line in lines] == [[1.0, n / 4] for n in range(6)]


def test_a_reseed_the_agent_made_endless_fails_its_hop_and_does_not_hold_the_host(tmp_path: Path) -> None:
    import threading

    project = copy_project(PROJECT, tmp_path / "endless")
    main = project / "agent-analyst" / "main.py"
    main.write_text(f"import random\n\ndef _endless(*args, **kwargs):\n    while True:\n        pass\n\nrandom.seed = _endless\n{main.read_text()}")
    build(project)
    runner = Runner(project / "dist", Events(None), warm=1)
    results = [runner.run({"op": "solve", "a": [[2.0, 0.0], [0.0, 4.0]], "b": [2.0, 4.0]}) for _ in range(2)]
    made_on_demand_only = runner.maker("analyst").not_prepared.is_set()  # the pool stopped trying ahead of its tasks
    closing = threading.Thread(target=runner.close)
    closing.start()
    closing.join(timeout=120)  # a hang, not a speed: preparing an instance is bounded at 2 s
    assert not closing.is_alive(), "Runner.close() is still waiting for an instance's reseed"
    assert made_on_demand_only
    for result in results:
        refused = result.result
        assert refused["refused"] == "Trap" and refused["agent"] == "analyst", refused
        assert "reseeding the random generators of its fresh instance did not end within 2 s" in refused["message"]
