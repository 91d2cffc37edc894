"""The build phase end to end: real pip, real componentize-py, real files."""

import hashlib
import shutil
import uuid
from pathlib import Path

import pytest

from wasm_agents.artifacts import verify_dist
from wasm_agents.build import build
from wasm_agents.builder.componentize import componentize
from wasm_agents.errors import BuildError, VendorError

from conftest import EXAMPLE, copy_project


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dist_holds_every_file_and_verifies(example_dist):
    names = sorted(p.relative_to(example_dist).as_posix() for p in example_dist.rglob("*") if p.is_file())
    assert names == [
        "code-artifact.tar.gz", "code-manifest.json", "components/agent.wasm", "components/multiplier.wasm",
        "deps-artifact.tar.gz", "deps-manifest.json", "manifest.json", "manifest.json.sha256", "provenance.json",
        "runtime-artifact.tar.gz", "runtime-manifest.json",
    ]
    manifest = verify_dist(example_dist).manifest
    assert manifest.tools["guest-python"] == "3.14" and manifest.tools["componentize-py"]
    assert manifest.project.policy.order == ("agent", "multiplier")


def test_lock_is_written_beside_the_requirements(example_project):
    lock = (example_project / "agent" / "requirements.lock").read_text()
    assert "python-dateutil==2.9.0.post0 --hash=sha256:" in lock and "six==" in lock


def test_two_builds_give_identical_tarballs_and_manifests(example_project, tmp_path):
    again = build(copy_project(example_project, tmp_path / "again"), tmp_path / "dist2")
    assert set(again.cached_components) == {"agent", "multiplier"}  # nothing changed: from the cache
    for name in ("code-artifact.tar.gz", "deps-artifact.tar.gz", "code-manifest.json", "deps-manifest.json", "manifest.json"):
        assert digest(example_project / "dist" / name) == digest(tmp_path / "dist2" / name), name


def test_a_source_change_rebuilds_only_that_component(example_project, tmp_path):
    project = copy_project(example_project, tmp_path / "changed")
    main = project / "agent-multiplier" / "main.py"
    main.write_text(main.read_text() + f"\n# changed: {uuid.uuid4()}\n")  # new content, never cached before
    result = build(project)
    assert result.cached_components == ("agent",)


def test_failed_build_leaves_the_previous_dist_whole(example_project, tmp_path):
    project = copy_project(example_project, tmp_path / "broken")
    shutil.copytree(example_project / "dist", project / "dist")
    before = {p: digest(p) for p in (project / "dist").rglob("*") if p.is_file()}
    (project / "agent" / "requirements.txt").write_text("rpds-py==0.27.1\n")
    with pytest.raises(VendorError, match="rpds-py: only compiled wheels"):
        build(project)
    assert {p: digest(p) for p in (project / "dist").rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".")) == []


def test_import_error_at_build_time_names_the_agent_module_line_and_a_fix(tmp_path):
    project = tmp_path / "p"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "main.py").write_text("import not_installed_anywhere\n\ndef main(config):\n    pass\n")
    with pytest.raises(BuildError) as error:
        build(project)
    assert str(error.value).splitlines() == [
        "agent 'agent': importing agent/main.py failed at build time: ModuleNotFoundError: No module named 'not_installed_anywhere'",
        "  agent/main.py:1: import not_installed_anywhere",
        "  hint: 'not_installed_anywhere' is neither in the stdlib nor in agent/requirements.txt: add the package that provides it",
    ]


def test_components_cache_is_keyed_by_content(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text("def main(config):\n    return None\n")
    deps = tmp_path / "deps"
    deps.mkdir()
    assert componentize("t", code, deps, tmp_path / "a.wasm") in (True, False)
    assert componentize("t", code, deps, tmp_path / "b.wasm") is True
    assert digest(tmp_path / "a.wasm") == digest(tmp_path / "b.wasm")


def test_example_sources_are_committed_with_their_lock():
    assert (EXAMPLE / "agent" / "requirements.lock").is_file(), "commit the example's lock so builds are pinned"
