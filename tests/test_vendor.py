"""Vendoring against the real package index with real pip: locks, the wheel cache, refusals."""

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from wasm_agents.builder.vendor import (
    GUEST_TAGS,
    PIP_TARGET_ARGS,
    LockedWheel,
    _install,
    _NoPureBuild,
    _pure_wheel,
    vendor,
)
from wasm_agents.errors import VendorError

DATEUTIL = "python-dateutil==2.9.0.post0\n"
# Both publish compiled wheels only, and sdists that fall back to pure Python without a compiler. msgpack 1.1.2
# has wheels for CPython 3.14 on common machines; markupsafe 3.0.2 predates 3.14, so no wheel of it suits any.
SDIST_ONLY = "jinja2==3.1.6\nmarkupsafe==3.0.2\nmsgpack==1.1.2\n"
BUILT = "has no sandbox wheel; built a pure-Python wheel from its sdist (compiled extensions, if any, left out)"


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


@pytest.fixture(scope="session")
def built(session_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LockedWheel], list[str]]:
    """An agent requiring packages with no sandbox wheel, vendored once: (agent_dir, result, notices)."""
    agent = tmp_path_factory.mktemp("web")
    (agent / "requirements.txt").write_text(SDIST_ONLY)
    notices: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(session_cache))
        result = vendor("web", agent, agent / "site-packages", notify=notices.append)
    return agent, result, notices


def copy_agent(resolved: tuple[Path, ...], tmp_path: Path) -> Path:
    agent = tmp_path / "agent"
    agent.mkdir()
    for name in ("requirements.txt", "requirements.lock"):
        shutil.copy(resolved[0] / name, agent / name)
    return agent


def make_wheel(folder: Path, tag: str, files: dict[str, bytes]) -> Path:
    """A wheel of `demo` 1.0 as a build backend might write it, with `files` besides its .dist-info."""
    path = folder / f"demo-1.0-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        wheel.writestr("demo-1.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        wheel.writestr("demo-1.0.dist-info/RECORD", "")
    return path


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


def test_compiled_only_dependency_refused_with_the_path_that_pulled_it_in(tmp_path: Path) -> None:
    # jsonschema 4.18+ needs rpds-py: Rust, compiled wheels only, and its sdist needs cargo and rustc.
    (tmp_path / "requirements.txt").write_text("jsonschema>=4.18\n")
    with pytest.raises(VendorError) as error:
        vendor("schemas", tmp_path, tmp_path / "site")
    assert re.fullmatch(
        r"schemas: jsonschema( → [a-z-]+)* → rpds-py: only compiled wheels, no pure-Python or WASI wheel "
        r"\(its sdist does not build without a compiler\), "
        r"and every jsonschema release requirements\.txt allows needs it",
        str(error.value),
    ), str(error.value)
    assert not (tmp_path / "requirements.lock").exists()


def test_newest_release_without_sandbox_wheel_is_skipped_with_a_notice(tmp_path: Path) -> None:
    # pydantic 2.12.3 is pure Python but pins pydantic-core, which is compiled only; 1.10 is pure throughout.
    (tmp_path / "requirements.txt").write_text("pydantic<=2.12.3\n")
    notices: list[str] = []
    wheels = vendor("models", tmp_path, tmp_path / "site", notify=notices.append)
    versions = {wheel.name: wheel.version for wheel in wheels}
    assert versions["pydantic"].startswith("1.10.") and "pydantic-core" not in versions
    assert notices == [
        "models: pydantic: 2.12.3 has no sandbox wheel (only compiled wheels for pydantic-core); "
        f"using {versions['pydantic']}"
    ]


def test_newest_release_whose_dependency_is_only_an_sdist_is_taken_not_skipped(tmp_path: Path) -> None:
    # num2words 0.5.14 needs docopt, published only as an sdist: pip alone quietly backtracks to 0.5.6.
    (tmp_path / "requirements.txt").write_text("num2words<=0.5.14\n")
    notices: list[str] = []
    wheels = {wheel.name: wheel for wheel in vendor("words", tmp_path, tmp_path / "site", notify=notices.append)}
    assert wheels["num2words"].version == "0.5.14"
    assert wheels["docopt"].from_sdist and wheels["docopt"].filename.endswith("-py3-none-any.whl")
    assert notices == [
        f"words: docopt: {wheels['docopt'].version} has no sandbox wheel; built a pure-Python wheel from its sdist "
        "(compiled extensions, if any, left out)"
    ]


def test_optional_extensions_built_from_their_sdists_as_pure_python(
    built: tuple[Path, list[LockedWheel], list[str]], session_cache: Path
) -> None:
    agent, result, notices = built
    assert [(w.name, w.version, w.filename, w.from_sdist) for w in result] == [
        ("jinja2", "3.1.6", "jinja2-3.1.6-py3-none-any.whl", False),
        ("markupsafe", "3.0.2", "markupsafe-3.0.2-py3-none-any.whl", True),
        ("msgpack", "1.1.2", "msgpack-1.1.2-py3-none-any.whl", True),
    ]
    assert notices == [f"web: markupsafe: 3.0.2 {BUILT}", f"web: msgpack: 1.1.2 {BUILT}"]
    lock = (agent / "requirements.lock").read_text().splitlines()
    assert lock[-4:] == [
        "# markupsafe==3.0.2 was built from its sdist by wasm-agents as pure Python: the index has no sandbox wheel of it",
        f"markupsafe==3.0.2 --hash=sha256:{result[1].sha256}  # markupsafe-3.0.2-py3-none-any.whl",
        "# msgpack==1.1.2 was built from its sdist by wasm-agents as pure Python: the index has no sandbox wheel of it",
        f"msgpack==1.1.2 --hash=sha256:{result[2].sha256}  # msgpack-1.1.2-py3-none-any.whl",
    ]
    for wheel in result[1:]:
        cached = session_cache / "wasm-agents" / "wheels" / wheel.sha256 / wheel.filename
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == wheel.sha256
        with zipfile.ZipFile(cached) as archive:
            dist_info = f"{wheel.name}-{wheel.version}.dist-info"
            assert archive.read(f"{dist_info}/WHEEL").endswith(b"Root-Is-Purelib: true\nTag: py3-none-any\n")
            assert archive.namelist()[-1] == f"{dist_info}/RECORD"
    site = agent / "site-packages"
    assert not [p for p in site.rglob("*") if p.suffix in {".so", ".pyd", ".dylib", ".dll"}]
    # They run on their pure-Python fallbacks, with nothing but the vendored packages on the path (-S).
    probe = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import importlib.util, jinja2, msgpack; "
        "print(jinja2.Template('{{ x }}', autoescape=True).render(x='<b>'), msgpack.unpackb(msgpack.packb([1]))); "
        "print(importlib.util.find_spec('markupsafe._speedups'), importlib.util.find_spec('msgpack._cmsgpack'))"
    )
    run = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["&lt;b&gt;", "[1]", "None", "None"]


def test_built_wheels_come_from_the_cache_or_are_built_again_with_the_locked_bytes(
    built: tuple[Path, list[LockedWheel], list[str]],
    session_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = copy_agent(built, tmp_path)
    assert vendor("web", agent, tmp_path / "warm", offline=True) == built[1]
    cold = tmp_path / "cold" / "wasm-agents"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cold.parent))
    with pytest.raises(VendorError, match="is not in the wheel cache and offline mode cannot fetch it"):
        vendor("web", agent, tmp_path / "offline", offline=True)
    # No wheels cached, but pip's cache of the builds is kept: building again is then quick.
    shutil.copytree(session_cache / "wasm-agents" / "sdist-builds", cold / "sdist-builds")
    with caplog.at_level(logging.WARNING, logger="wasm_agents.builder.vendor"):  # no `notify`: notices are logged
        assert vendor("web", agent, tmp_path / "rebuilt") == built[1]
    assert caplog.messages == [
        "web: markupsafe: 3.0.2 built again from its sdist (not in the wheel cache)",
        "web: msgpack: 1.1.2 built again from its sdist (not in the wheel cache)",
    ]
    assert tree(tmp_path / "rebuilt") == tree(tmp_path / "warm") == tree(built[0] / "site-packages")
    msgpack = built[1][2]
    lock = agent / "requirements.lock"
    lock.write_text(lock.read_text().replace(msgpack.sha256, "0" * 64))
    with pytest.raises(VendorError) as error:
        vendor("web", agent, tmp_path / "tampered")
    assert str(error.value).startswith(
        "web requirements.lock: msgpack==1.1.2 built again from its sdist differs from the lock "
        f"(expected msgpack-1.1.2-py3-none-any.whl sha256 {'0' * 64}, got msgpack-1.1.2-py3-none-any.whl "
        f"sha256 {msgpack.sha256}): "
    )


def test_platform_tagged_build_without_compiled_code_is_retagged_pure(tmp_path: Path) -> None:
    # An optional extension that failed to compile leaves its source and a platform tag, but nothing native.
    files = {"demo/__init__.py": b"ANSWER = 42\n", "demo/_speedups.c": b"/* not compiled */\n"}
    made = make_wheel(tmp_path, "cp311-cp311-linux_x86_64", files)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _pure_wheel(made, tmp_path / "a"), _pure_wheel(made, tmp_path / "b")
    assert first.name == "demo-1.0-py3-none-any.whl" and first.read_bytes() == second.read_bytes()
    _install("demo", [first], tmp_path / "site")  # checks every RECORD hash
    assert (tmp_path / "site" / "demo" / "__init__.py").read_bytes() == b"ANSWER = 42\n"
    assert "Tag: py3-none-any" in (tmp_path / "site" / "demo-1.0.dist-info" / "WHEEL").read_text()


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("demo/_speedups.cpython-311-x86_64-linux-gnu.so", b"\x7fELF\x02\x01\x01"),
        ("demo/_speedups.pyd", b"MZ"),
        ("demo.libs/libyaml-0.so.2.0.9", b""),
        ("demo-1.0.data/scripts/demo", b"\xcf\xfa\xed\xfe"),  # a Mach-O executable, whatever its name
    ],
)
def test_build_with_compiled_code_is_refused(path: str, data: bytes, tmp_path: Path) -> None:
    made = make_wheel(tmp_path, "cp311-cp311-linux_x86_64", {"demo/__init__.py": b"", path: data})
    with pytest.raises(_NoPureBuild, match=re.escape(path)):
        _pure_wheel(made, tmp_path)
    assert list(tmp_path.glob("*py3-none-any.whl")) == []


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
