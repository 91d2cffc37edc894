"""package(): the dist/ layout, atomic replacement, and reproducible output."""

import os
import tarfile
from pathlib import Path

import pytest

from wasm_agents.artifacts import verify_dist
from wasm_agents.artifacts.archive import artifact_manifest, write_reproducible_tar
from wasm_agents.artifacts.model import ArtifactManifest
from wasm_agents.builder.package import package
from wasm_agents.errors import BuildError, VerificationError
from wasm_agents.project import AgentSpec, ChainPolicy, Project

CODE = {
    "agent/main.py": b"def run(task):\n    return task\n",
    "agent/data/table.csv": b"a,b\n1,2\n",
    "agent-multiplier/main.py": b"def run(task):\n    return task * 2\n",
}
DEPS = {"agent/pkg/__init__.py": b"VALUE = 1\n", "agent-multiplier/six.py": b"# six\n"}
RUNTIME = {"python/os.py": b"# the guest's os\n", "sandbox/wasm_agents_harness.py": b"# harness\n"}
PROJECT = Project({name: AgentSpec(name, name) for name in ("agent", "agent-multiplier")}, ChainPolicy(order=("agent", "agent-multiplier")))
TOOLS = {"wasm-agents": "0.1.0", "componentize-py": "0.25.1", "wasmtime": "50.0.1", "guest-python": "3.12"}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create `files` under `root`."""
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Map every path under `root` to its content (None for directories)."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    """Staged code, staged deps and two fake components, as package() takes them."""
    write_tree(tmp_path / "stage", {f"code/{path}": data for path, data in CODE.items()})
    write_tree(tmp_path / "stage", {f"deps/{path}": data for path, data in DEPS.items()})
    write_tree(tmp_path / "stage", {"agent.wasm": b"\0asm one" * 100, "agent-multiplier.wasm": b"\0asm two" * 90})
    stage = tmp_path / "stage"
    runtime = stage / "runtime-artifact.tar.gz"
    write_reproducible_tar(write_tree(stage / "runtime", RUNTIME), runtime)
    return {
        "code_dir": stage / "code",
        "deps_dir": stage / "deps",
        "runtime": (runtime, artifact_manifest(runtime, "runtime-artifact.tar.gz")),
        "components": {"agent": stage / "agent.wasm", "agent-multiplier": stage / "agent-multiplier.wasm"},
        "project": PROJECT,
        "tools": TOOLS,
    }


def test_package_writes_the_layout(inputs: dict, tmp_path: Path) -> None:
    dist = tmp_path / "out" / "dist"
    manifest = package(**inputs, dist=dist)

    assert sorted(snapshot(dist)) == [
        "code-artifact.tar.gz",
        "code-manifest.json",
        "components",
        "components/agent-multiplier.wasm",
        "components/agent.wasm",
        "deps-artifact.tar.gz",
        "deps-manifest.json",
        "manifest.json",
        "manifest.json.sha256",
        "runtime-artifact.tar.gz",
        "runtime-manifest.json",
    ]
    assert verify_dist(dist).manifest == manifest
    assert manifest.project == PROJECT and manifest.tools == TOOLS
    assert (dist / "components/agent.wasm").read_bytes() == inputs["components"]["agent"].read_bytes()
    assert inputs["components"]["agent"].exists()  # copied, not moved
    with tarfile.open(dist / "code-artifact.tar.gz") as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar.getmembers()} == CODE
    with tarfile.open(dist / "deps-artifact.tar.gz") as tar:
        assert sorted(tar.getnames()) == sorted(DEPS)
    listing = ArtifactManifest.from_json((dist / "deps-manifest.json").read_bytes(), "deps-manifest.json")
    assert listing.artifact == "deps-artifact.tar.gz"
    assert [entry.path for entry in listing.files] == sorted(DEPS)
    assert [p.name for p in dist.parent.iterdir()] == ["dist"]


def test_package_replaces_a_previous_dist(inputs: dict, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    package(**inputs, dist=dist)
    (dist / "stale.txt").write_text("from an older build")
    inputs["components"]["agent"].write_bytes(b"\0asm rebuilt")
    package(**inputs, dist=dist)
    assert not (dist / "stale.txt").exists()
    assert (dist / "components/agent.wasm").read_bytes() == b"\0asm rebuilt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist", "stage"]


def make_missing_component(inputs: dict) -> None:
    inputs["components"]["agent"] = inputs["code_dir"] / "no-such.wasm"


def make_symlink_in_code(inputs: dict) -> None:
    (inputs["code_dir"] / "agent" / "link.py").symlink_to("main.py")


def make_fifo_in_deps(inputs: dict) -> None:
    os.mkfifo(inputs["deps_dir"] / "agent" / "pipe")


def make_invalid_tools(inputs: dict) -> None:
    inputs["tools"] = {**TOOLS, "wasmtime": 50}


def make_bad_component_name(inputs: dict) -> None:
    inputs["components"]["../evil"] = inputs["components"]["agent"]


@pytest.mark.parametrize(
    ("breakage", "error", "match"),
    [
        (make_missing_component, FileNotFoundError, "no-such.wasm"),
        (make_symlink_in_code, BuildError, "link.py: is a symlink"),
        (make_fifo_in_deps, BuildError, "pipe: is a special file"),
        (make_invalid_tools, VerificationError, r'manifest.json: tools\["wasmtime"\]: expected a string, got 50'),
        (make_bad_component_name, BuildError, "not a valid component name"),
    ],
)
def test_failed_package_leaves_previous_dist_untouched(
    inputs: dict, tmp_path: Path, breakage, error: type[Exception], match: str
) -> None:
    dist = tmp_path / "dist"
    package(**inputs, dist=dist)
    before = snapshot(dist)
    breakage(inputs)
    with pytest.raises(error, match=match):
        package(**inputs, dist=dist)
    assert snapshot(dist) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist", "stage"]


def test_failed_first_package_leaves_nothing(inputs: dict, tmp_path: Path) -> None:
    make_symlink_in_code(inputs)
    with pytest.raises(BuildError):
        package(**inputs, dist=tmp_path / "dist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]


def test_package_refuses_to_replace_a_file(inputs: dict, tmp_path: Path) -> None:
    (tmp_path / "dist").write_text("not a dist")
    with pytest.raises(BuildError, match="exists and is not a directory"):
        package(**inputs, dist=tmp_path / "dist")
    assert (tmp_path / "dist").read_text() == "not a dist"


def test_package_is_reproducible(inputs: dict, tmp_path: Path) -> None:
    package(**inputs, dist=tmp_path / "first")
    for path in inputs["code_dir"].rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    (inputs["deps_dir"] / "agent" / "pkg" / "__init__.py").chmod(0o600)
    package(**inputs, dist=tmp_path / "second")
    assert snapshot(tmp_path / "first") == snapshot(tmp_path / "second")
