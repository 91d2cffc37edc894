"""Vendoring against the real package index with real pip: locks, the wheel cache, refusals."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from wasm_agents.build.vendor import GUEST_TAGS, PIP_TARGET_ARGS, LockedWheel, vendor
from wasm_agents.errors import VendorError

DATEUTIL = "python-dateutil==2.9.0.post0\n"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel cache for the whole test session, so each wheel is downloaded once."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _use_session_cache(session_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(session_cache))
    monkeypatch.setenv("PIP_RETRIES", "0")


@pytest.fixture(scope="session")
def resolved(session_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[LockedWheel]]:
    """An agent requiring python-dateutil, vendored once: (agent_dir, site_packages, result)."""
    agent = tmp_path_factory.mktemp("agent")
    (agent / "requirements.txt").write_text(DATEUTIL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(session_cache))
        result = vendor("dates", agent, agent / "site-packages")
    return agent, agent / "site-packages", result


def copy_agent(resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path) -> Path:
    agent = tmp_path / "agent"
    agent.mkdir()
    for name in ("requirements.txt", "requirements.lock"):
        shutil.copy(resolved[0] / name, agent / name)
    return agent


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def dead_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any pip call fail: no config files, no find-links, an index nobody listens on."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/")


def test_pure_wheels_installed_and_locked(resolved: tuple[Path, Path, list[LockedWheel]], session_cache: Path) -> None:
    agent, site, result = resolved
    assert [(w.name, w.version) for w in result] == [("python-dateutil", "2.9.0.post0"), ("six", "1.17.0")]
    assert (site / "dateutil" / "__init__.py").is_file() and (site / "dateutil" / "tz" / "tz.py").is_file()
    assert (site / "six.py").is_file()
    assert (site / "six-1.17.0.dist-info" / "INSTALLER").read_bytes() == b"wasm-agents"
    assert not list(site.rglob("__pycache__")) and not list(site.rglob("*.pyc"))
    lock = (agent / "requirements.lock").read_text().splitlines()
    requirements_sha = hashlib.sha256(DATEUTIL.encode()).hexdigest()
    assert lock[0] == f"# wasm-agents lock v1; requirements.txt sha256={requirements_sha}"
    pins = [line for line in lock if not line.startswith("#")]
    assert len(pins) == 2
    for wheel, line in zip(result, pins):
        assert line.startswith(f"{wheel.name}=={wheel.version} --hash=sha256:{wheel.sha256}")
        cached = session_cache / "wasm-agents" / "wheels" / wheel.sha256 / wheel.filename
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == wheel.sha256


def test_rebuild_from_lock_and_warm_cache_needs_no_network(
    resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = copy_agent(resolved, tmp_path)
    lock_before = (agent / "requirements.lock").read_bytes()
    dead_index(monkeypatch)
    # The dead index really is dead: pip cannot download anything here.
    probe = [sys.executable, "-m", "pip", "download", *PIP_TARGET_ARGS, "--no-deps", "-d", str(tmp_path / "p"), "six"]
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0

    assert vendor("dates", agent, tmp_path / "online") == resolved[2]
    assert vendor("dates", agent, tmp_path / "offline", offline=True) == resolved[2]
    assert (agent / "requirements.lock").read_bytes() == lock_before
    # Same lock, same bytes.
    assert tree(tmp_path / "online") == tree(tmp_path / "offline") == tree(resolved[1])


def test_offline_with_cold_cache_refused(
    resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = copy_agent(resolved, tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cold"))
    missing = re.escape("python_dateutil-2.9.0.post0-py2.py3-none-any.whl is not in the wheel cache")
    with pytest.raises(VendorError, match=missing):
        vendor("dates", agent, tmp_path / "site", offline=True)
    (agent / "requirements.txt").write_text("six\n")
    with pytest.raises(VendorError, match="offline"):
        vendor("dates", agent, tmp_path / "site", offline=True)


def test_cold_cache_with_unreachable_index_fails_clearly(
    resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = copy_agent(resolved, tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cold"))
    dead_index(monkeypatch)
    monkeypatch.setenv("PIP_RETRIES", "1")  # so pip says why
    with pytest.raises(VendorError, match="could not reach the package index"):
        vendor("dates", agent, tmp_path / "site")


def test_lock_hash_mismatch_refused(resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path) -> None:
    agent = copy_agent(resolved, tmp_path)
    six = next(w for w in resolved[2] if w.name == "six")
    lock = agent / "requirements.lock"
    lock.write_text(lock.read_text().replace(six.sha256, "0" * 64))
    with pytest.raises(VendorError) as error:
        vendor("dates", agent, tmp_path / "site")
    assert str(error.value) == (
        f"dates requirements.lock: six==1.17.0 hash mismatch: expected {'0' * 64}, got {six.sha256}"
    )


def test_changed_requirements_rewrite_the_lock(resolved: tuple[Path, Path, list[LockedWheel]], tmp_path: Path) -> None:
    agent = copy_agent(resolved, tmp_path)
    text = "# dates\n\npython-dateutil \\\n    ==2.9.0.post0  # pinned\nsix==1.17.0\n"
    (agent / "requirements.txt").write_text(text)
    assert vendor("dates", agent, tmp_path / "site") == resolved[2]
    lock = (agent / "requirements.lock").read_text()
    requirements_sha = hashlib.sha256(text.encode()).hexdigest()
    assert lock.startswith(f"# wasm-agents lock v1; requirements.txt sha256={requirements_sha}\n")
    assert lock.count("--hash=sha256:") == 2


def test_markers_are_evaluated_for_the_guest_not_the_host(tmp_path: Path) -> None:
    # The host is CPython 3.11+ on Linux, the guest CPython 3.14 on WASI: tomli is for old Pythons only,
    # six is asked for on WASI only, and anyio 4.9.0 wants typing_extensions below Python 3.13 only.
    (tmp_path / "requirements.txt").write_text(
        'tomli; python_version < "3.12"\nsix; sys_platform == "wasi"\nanyio==4.9.0\n'
    )
    names = [wheel.name for wheel in vendor("markers", tmp_path, tmp_path / "site")]
    assert names == ["anyio", "idna", "six", "sniffio"]


@pytest.mark.parametrize(
    ("requirement", "names"),
    [("markupsafe", ["markupsafe"]), ("jinja2==3.1.6", ["markupsafe", "jinja2"])],
)
def test_package_without_sandbox_wheel_refused_by_name(requirement: str, names: list[str], tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(requirement + "\n")
    with pytest.raises(VendorError) as error:
        vendor("web", tmp_path, tmp_path / "site")
    message = str(error.value)
    assert "\n" not in message and "sandbox" in message and "pure-Python" in message
    assert all(name in message.lower() for name in names)
    assert not (tmp_path / "requirements.lock").exists()


def test_misspelt_package_is_named_as_not_on_the_index(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("python-dateutill\n")
    with pytest.raises(VendorError, match=r"^typo: python-dateutill was not found on the package index \(is the name spelled right\?\)$"):
        vendor("typo", tmp_path, tmp_path / "site")


@pytest.mark.parametrize(
    "line",
    [
        "-e ./project",
        "--editable=git+https://example.org/x.git",
        "--index-url https://example.org/simple",
        "-i https://example.org/simple",
        "--extra-index-url https://example.org/simple",
        "-f /opt/wheels",
        "--no-index",
        "-r other.txt",
        "-c constraints.txt",
        "six @ https://example.org/six-1.17.0-py2.py3-none-any.whl",
        "https://example.org/six-1.17.0-py2.py3-none-any.whl",
        "./local/project",
        "/abs/project",
        "six-1.17.0-py2.py3-none-any.whl",
    ],
)
def test_unsafe_lines_refused_with_file_and_line(line: str, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(f"# header\nsix==1.17.0\n\n{line}\n")
    with pytest.raises(VendorError, match=re.escape("requirements.txt:4: ")):
        vendor("risky", tmp_path, tmp_path / "site")
    assert not (tmp_path / "requirements.lock").exists()


@pytest.mark.parametrize("line", ["-e ./missing-project", "six @ http://127.0.0.1:9/six-1.17.0-py2.py3-none-any.whl"])
def test_unsafe_lines_reach_pip_when_allowed(line: str, tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(line + "\n")
    with pytest.raises(VendorError) as error:  # pip itself fails: nothing is there
        vendor("risky", tmp_path, tmp_path / "site", allow_unsafe_sources=True)
    assert "requirements.txt:1" not in str(error.value) and "not allowed" not in str(error.value)


def test_invalid_requirement_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("six\nsix ==> 1\n")
    with pytest.raises(VendorError, match=r"requirements\.txt:2: invalid requirement: "):
        vendor("typo", tmp_path, tmp_path / "site")


@pytest.mark.parametrize("content", [None, "", "# nothing\n\n   \n"])
def test_no_requirements_means_nothing_to_do(content: str | None, tmp_path: Path) -> None:
    if content is not None:
        (tmp_path / "requirements.txt").write_text(content)
    assert vendor("bare", tmp_path, tmp_path / "site") == []
    assert not (tmp_path / "requirements.lock").exists()


@pytest.mark.parametrize(
    ("filename", "usable"),
    [
        ("six-1.17.0-py2.py3-none-any.whl", True),
        ("attrs-25.1.0-py3-none-any.whl", True),
        ("x-1.0-py314-none-any.whl", True),
        ("x-1.0-cp314-cp314-wasi_0_0_0_wasm32.whl", True),
        ("x-1.0-cp312-abi3-wasi_0_0_0_wasm32.whl", True),
        ("x-1.0-py2-none-any.whl", False),
        ("x-1.0-cp314-cp314-any.whl", False),
        ("x-1.0-cp313-cp313-wasi_0_0_0_wasm32.whl", False),
        ("x-1.0-cp314-cp314t-wasi_0_0_0_wasm32.whl", False),
        ("markupsafe-3.0.2-cp314-cp314-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", False),
        ("x-1.0-cp312-cp312-pyemscripten_2024_0_wasm32.whl", False),
    ],
)
def test_guest_tags(filename: str, usable: bool) -> None:
    assert (not parse_wheel_filename(filename)[3].isdisjoint(GUEST_TAGS)) is usable
