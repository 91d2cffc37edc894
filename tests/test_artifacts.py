"""Reproducible archives, strict manifests, and verify_dist/extract_verified against tampered and crafted dists."""

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasm_agents.artifacts import verify, verify_dist
from wasm_agents.artifacts.archive import artifact_manifest, extract_verified, write_reproducible_tar
from wasm_agents.artifacts.files import sha256_file
from wasm_agents.artifacts.model import ArtifactManifest, FileEntry, Manifest
from wasm_agents.artifacts.verify import load_artifact_manifest
from wasm_agents.errors import BuildError, VerificationError
from wasm_agents.project import AgentSpec, ChainPolicy, Project

CODE = {
    "agent/main.py": b"def run(task):\n    return task\n",
    "agent/data/table.csv": b"a,b\n1,2\n",
    "agent/data/nested/notes.txt": b"hello\n",
    "agent-multiplier/main.py": b"def run(task):\n    return task * 2\n",
}
DEPS = {
    "agent/pkg/__init__.py": b"VALUE = 1\n",
    "agent/pkg-1.0.dist-info/RECORD": b"pkg/__init__.py,,\n",
    "agent-multiplier/six.py": b"# six\n",
}
RUNTIME = {"python/os.py": b"# the guest's os\n", "sandbox/wasm_agents_harness.py": b"# harness\n"}
COMPONENTS = {"agent": b"\0asm fake component one" * 50, "agent-multiplier": b"\0asm fake component two" * 70}
PROJECT = Project({name: AgentSpec(name, name) for name in COMPONENTS}, ChainPolicy(order=tuple(COMPONENTS)))
DIST_FILES = [
    "manifest.json",
    "manifest.json.sha256",
    "code-artifact.tar.gz",
    "code-manifest.json",
    "deps-artifact.tar.gz",
    "deps-manifest.json",
    "runtime-artifact.tar.gz",
    "runtime-manifest.json",
    "components/agent.wasm",
    "components/agent-multiplier.wasm",
]


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Create `files` under `root`."""
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def seal(dist: Path) -> None:
    """(Re)write manifest.json and its .sha256 so that they cover every other file now in `dist`."""
    paths = sorted(
        str(path.relative_to(dist))
        for path in dist.rglob("*")
        if path.is_file() and path.name not in ("manifest.json", "manifest.json.sha256")
    )
    files = {path: FileEntry(path, (dist / path).stat().st_size, sha256_file(dist / path)) for path in paths}
    data = Manifest("wasm-agents/1", {"wasm-agents": "0.1.0"}, PROJECT, files).to_json()
    (dist / "manifest.json").write_bytes(data)
    (dist / "manifest.json.sha256").write_bytes(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n".encode())


def make_dist(root: Path) -> Path:
    """Build a small, valid dist under `root` with fake components."""
    dist = root / "dist"
    (dist / "components").mkdir(parents=True)
    for kind, files in (("code", CODE), ("deps", DEPS), ("runtime", RUNTIME)):
        archive = dist / f"{kind}-artifact.tar.gz"
        write_reproducible_tar(write_tree(root / kind, files), archive)
        (dist / f"{kind}-manifest.json").write_bytes(artifact_manifest(archive, archive.name).to_json())
    for name, data in COMPONENTS.items():
        (dist / "components" / f"{name}.wasm").write_bytes(data)
    seal(dist)
    return dist


def crafted_tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """Return a gzip tar holding exactly `members`, however unsafe."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
            for info, data in members:
                tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return raw.getvalue()


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object) -> tuple[tarfile.TarInfo, bytes]:
    """Describe one tar member."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def replace_code_archive(dist: Path, archive: bytes, listed: dict[str, bytes]) -> None:
    """Swap in `archive` as the code artifact, listed in code-manifest.json as holding `listed`, and reseal."""
    (dist / "code-artifact.tar.gz").write_bytes(archive)
    files = tuple(FileEntry(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in sorted(listed.items()))
    manifest = ArtifactManifest("code-artifact.tar.gz", len(archive), hashlib.sha256(archive).hexdigest(), files)
    (dist / "code-manifest.json").write_bytes(manifest.to_json())
    seal(dist)


def problems_of(dist: Path) -> list[str]:
    """Return the problems verify_dist reports for `dist` (failing if there are none)."""
    with pytest.raises(VerificationError) as caught:
        verify_dist(dist)
    return caught.value.problems


@pytest.fixture(scope="module")
def good_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dist(tmp_path_factory.mktemp("good"))


@pytest.fixture
def dist(good_dist: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_dist, tmp_path / "dist"))


# --- reproducible archives -------------------------------------------------------------------------


def test_reproducible_tar_ignores_mtimes_permissions_and_creation_order(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    write_tree(first, CODE)
    write_tree(second, dict(reversed(CODE.items())))
    for path in CODE:
        os.utime(first / path, (1_000_000, 1_000_000))
        os.utime(second / path, (2_000_000_000, 2_000_000_000))
        (first / path).chmod(0o600)
        (second / path).chmod(0o664)
    (first / "agent/main.py").chmod(0o700)
    (second / "agent/main.py").chmod(0o755)
    (first / "agent/empty").mkdir()
    write_reproducible_tar(first, tmp_path / "first.tar.gz")
    write_reproducible_tar(second, tmp_path / "second.tar.gz")

    assert (tmp_path / "first.tar.gz").read_bytes() == (tmp_path / "second.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "first.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(CODE)  # sorted, no directories
    assert {m.name: m.mode for m in members}["agent/main.py"] == 0o755
    assert {m.mode for m in members if m.name != "agent/main.py"} == {0o644}
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.type) for m in members} == {(0, 0, 0, "", "", tarfile.REGTYPE)}


def test_reproducible_tar_honours_source_date_epoch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write_reproducible_tar(write_tree(tmp_path / "src", CODE), tmp_path / "a.tar.gz")
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        write_reproducible_tar(tmp_path / "src", tmp_path / "b.tar.gz")


def test_gzip_header_has_no_mtime_and_no_name(tmp_path: Path) -> None:
    write_reproducible_tar(write_tree(tmp_path / "src", CODE), tmp_path / "named.tar.gz")
    header = (tmp_path / "named.tar.gz").read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # no FNAME (nor any other) flag
    assert header[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "backslash"])
def test_writer_refuses_what_it_cannot_archive_faithfully(tmp_path: Path, kind: str) -> None:
    source = write_tree(tmp_path / "src", CODE)
    bad = source / "agent" / ("a\\b" if kind == "backslash" else "bad")
    if kind == "symlink":
        bad.symlink_to("main.py")
    elif kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.write_bytes(b"")
    with pytest.raises(BuildError, match=str(bad).replace("\\", "\\\\")):
        write_reproducible_tar(source, tmp_path / "a.tar.gz")


def test_artifact_manifest_lists_members_sorted(good_dist: Path) -> None:
    manifest = ArtifactManifest.from_json((good_dist / "code-manifest.json").read_bytes(), "code-manifest.json")
    assert manifest.artifact == "code-artifact.tar.gz"
    assert manifest.sha256 == sha256_file(good_dist / "code-artifact.tar.gz")
    assert manifest.size == (good_dist / "code-artifact.tar.gz").stat().st_size
    assert manifest.files == tuple(
        FileEntry(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in sorted(CODE.items())
    )


def test_artifact_manifest_refuses_unsafe_members(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(crafted_tar([member("../x", b"x")]))
    with pytest.raises(VerificationError, match=r"a.tar.gz: member \.\./x: path contains '\.\.'"):
        artifact_manifest(tmp_path / "a.tar.gz", "a.tar.gz")


# --- verify_dist: a good dist, and tampering with its files --------------------------------------


def test_good_dist_verifies(good_dist: Path) -> None:
    manifest = verify_dist(good_dist).manifest
    assert sorted(manifest.files) == sorted(set(DIST_FILES) - {"manifest.json", "manifest.json.sha256"})
    assert manifest.project == PROJECT
    assert Manifest.from_json(manifest.to_json()) == manifest


@pytest.mark.parametrize("name", DIST_FILES)
def test_one_flipped_byte_in_any_file_is_reported(dist: Path, name: str) -> None:
    data = bytearray((dist / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (dist / name).write_bytes(bytes(data))
    problems = problems_of(dist)
    assert any(name in problem for problem in problems), problems
    if name.startswith("components/") or name.endswith((".tar.gz", "-manifest.json")):
        [problem] = problems
        assert problem.startswith(f"{name}: sha256 mismatch: expected ")
        assert problem.endswith(f", got {sha256_file(dist / name)}")
    if name == "manifest.json":
        assert any(p.startswith("manifest.json: does not match manifest.json.sha256") for p in problems)


def test_changed_member_inside_a_resealed_archive_is_reported(dist: Path, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "code", {**CODE, "agent/main.py": b"import os\n"})
    write_reproducible_tar(source, dist / "code-artifact.tar.gz")
    listing = ArtifactManifest.from_json((dist / "code-manifest.json").read_bytes())
    archive = dist / "code-artifact.tar.gz"
    resealed = ArtifactManifest(listing.artifact, archive.stat().st_size, sha256_file(archive), listing.files)
    (dist / "code-manifest.json").write_bytes(resealed.to_json())
    seal(dist)
    assert problems_of(dist) == [
        "code-artifact.tar.gz: member agent/main.py: size mismatch: expected 31, header says 10",
    ]


def test_same_size_member_change_is_reported_by_hash(dist: Path) -> None:
    changed = {**CODE, "agent/main.py": CODE["agent/main.py"].upper()}
    archive = crafted_tar([member(path, data) for path, data in sorted(changed.items())])
    replace_code_archive(dist, archive, CODE)
    [problem] = problems_of(dist)
    assert problem.startswith("code-artifact.tar.gz: member agent/main.py: sha256 mismatch: expected ")


def test_artifact_manifest_must_describe_its_archive(dist: Path) -> None:
    listing = json.loads((dist / "deps-manifest.json").read_bytes())
    listing["sha256"] = "0" * 64
    listing["artifact"] = "other.tar.gz"
    (dist / "deps-manifest.json").write_text(json.dumps(listing))
    seal(dist)
    problems = problems_of(dist)
    assert problems[0] == "deps-manifest.json: artifact: expected 'deps-artifact.tar.gz', got 'other.tar.gz'"
    assert problems[1].startswith("deps-manifest.json: sha256: expected ")
    assert len(problems) == 2


def test_missing_extra_and_symlinked_files_are_all_reported(dist: Path) -> None:
    (dist / "deps-manifest.json").unlink()
    (dist / "notes.txt").write_text("hi")
    (dist / "extra" / "deeper").mkdir(parents=True)
    (dist / "extra" / "deeper" / "x").write_text("hidden")
    (dist / "components" / "agent.wasm").rename(dist / "real.wasm")
    (dist / "components" / "agent.wasm").symlink_to(dist / "real.wasm")
    (dist / "components" / "link").symlink_to("/etc/passwd")
    os.mkfifo(dist / "components" / "fifo")
    assert problems_of(dist) == [
        "components/fifo: unexpected special file (not in manifest.json)",
        "components/link: unexpected symlink (not in manifest.json)",
        "extra: unexpected directory (not in manifest.json)",
        "notes.txt: unexpected file (not in manifest.json)",
        "real.wasm: unexpected file (not in manifest.json)",
        "components/agent.wasm: is a symlink, not a regular file",
        "deps-manifest.json: missing",
    ]


def test_missing_manifest_files(dist: Path) -> None:
    (dist / "manifest.json.sha256").unlink()
    (dist / "manifest.json").unlink()
    assert problems_of(dist) == ["manifest.json.sha256: missing", "manifest.json: missing"]


def test_symlinked_manifest_is_refused(dist: Path) -> None:
    (dist / "manifest.json").rename(dist.parent / "elsewhere.json")
    (dist / "manifest.json").symlink_to(dist.parent / "elsewhere.json")
    assert problems_of(dist) == ["manifest.json: is a symlink, not a regular file"]


def test_missing_or_non_directory_dist(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such dist directory"]
    (tmp_path / "file").write_text("")
    assert problems_of(tmp_path / "file") == [f"{tmp_path / 'file'}: no such dist directory"]


def test_artifacts_must_be_listed(dist: Path) -> None:
    (dist / "code-manifest.json").unlink()
    seal(dist)
    assert problems_of(dist) == ["code-manifest.json: not listed in manifest.json"]


def test_oversized_manifest_is_not_read(dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "MAX_MANIFEST_SIZE", 100)
    assert "manifest.json: larger than the limit of 100 bytes" in problems_of(dist)


def test_malformed_sha256_file(dist: Path) -> None:
    (dist / "manifest.json.sha256").write_text(sha256_file(dist / "manifest.json").upper() + "  manifest.json\n")
    assert problems_of(dist) == ["manifest.json.sha256: malformed: expected one line '<sha256>  manifest.json'"]


# --- crafted archives whose hashes all match ------------------------------------------------------

MAIN = member("agent/main.py", b"print(1)\n")
CRAFTED = {
    "dotdot": ([MAIN, member("agent/../../evil", b"x")], "member agent/../../evil: path contains '..'"),
    "absolute": ([MAIN, member("/etc/evil", b"x")], "member /etc/evil: absolute path"),
    "backslash": ([MAIN, member("agent\\evil", b"x")], "path contains a backslash"),
    "unnormalised": ([MAIN, member("agent/./evil", b"x")], "member agent/./evil: path is not normalised"),
    "symlink": ([MAIN, member("agent/link", kind=tarfile.SYMTYPE, linkname="/etc")], "member agent/link: is a symlink"),
    "hardlink": (
        [MAIN, member("agent/hard", kind=tarfile.LNKTYPE, linkname="agent/main.py")],
        "member agent/hard: is a hardlink",
    ),
    "device": (
        [MAIN, member("agent/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)],
        "member agent/null: is a character device",
    ),
    "fifo": ([MAIN, member("agent/fifo", kind=tarfile.FIFOTYPE)], "member agent/fifo: is a fifo"),
    "directory": ([member("agent", kind=tarfile.DIRTYPE), MAIN], "member agent: is a directory"),
    "duplicate": ([MAIN, member("agent/main.py", b"print(2)\n")], "member agent/main.py: duplicate member"),
    "non-utf8": ([MAIN, member("agent/\udcff.py", b"x")], "member 'agent/\\udcff.py': name is not valid UTF-8"),
    "larger": ([member("agent/main.py", b"print(1)\n" * 100)], "member agent/main.py: size mismatch: expected 9, header says 900"),
    "unlisted": ([MAIN, member("agent/extra.py", b"x")], "member agent/extra.py: not listed in code-manifest.json"),
    "missing": ([], "member agent/main.py: missing (listed in code-manifest.json)"),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_archive_is_refused(dist: Path, case: str) -> None:
    members, expected = CRAFTED[case]
    fmt = tarfile.GNU_FORMAT if case == "non-utf8" else tarfile.PAX_FORMAT
    replace_code_archive(dist, crafted_tar(members, fmt), {"agent/main.py": b"print(1)\n"})
    problems = problems_of(dist)
    assert [p for p in problems if expected in p and p.startswith("code-artifact.tar.gz: ")], problems


def test_decompression_bomb_stops_early(dist: Path) -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("agent/main.py")
            info.size = 32 << 20
            tar.addfile(info, io.BytesIO(bytes(info.size)))
    replace_code_archive(dist, raw.getvalue(), {"agent/main.py": b"print(1)\n"})
    problems = problems_of(dist)
    assert "code-artifact.tar.gz: member agent/main.py: size mismatch: expected 9, header says 33554432" in problems
    assert any(p.startswith("code-artifact.tar.gz: unreadable archive: decompresses to more than ") for p in problems)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_gzip_is_a_problem_not_a_traceback(dist: Path, damage: str) -> None:
    good = crafted_tar([MAIN])
    archive = good[: len(good) // 2] if damage == "truncated" else good[:10] + b"\xff" * 20 + good[30:]
    replace_code_archive(dist, archive, {"agent/main.py": b"print(1)\n"})
    [problem] = problems_of(dist)
    assert problem.startswith("code-artifact.tar.gz: unreadable archive: ")


# --- crafted manifests ------------------------------------------------------------------------------

GOOD_ENTRY = {"size": 1, "sha256": "a" * 64}
GOOD_MANIFEST = {"format": "wasm-agents/1", "tools": {}, "project": PROJECT.to_json(), "files": {"components/a.wasm": GOOD_ENTRY}}
GOOD_LISTING = {"artifact": "code-artifact.tar.gz", "size": 1, "sha256": "b" * 64, "files": [{"path": "a/b", **GOOD_ENTRY}]}


def with_value(doc: dict, key: tuple[str | int, ...], value: object) -> bytes:
    """Return `doc` as JSON with the value at `key` set to `value`; a value of KeyError deletes it."""
    doc = json.loads(json.dumps(doc))
    *parents, last = key
    target = doc
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc).encode()


MANIFEST_CASES = {
    "not json": (b"{", "manifest.json: invalid JSON: "),
    "not utf-8": (b'{"\xff": 1}', "manifest.json: invalid JSON: "),
    "nan": (b'{"format": NaN}', "manifest.json: invalid JSON: NaN is not allowed"),
    "duplicate key": (b'{"format": 1, "format": 2}', "manifest.json: invalid JSON: duplicate key 'format'"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "manifest.json: invalid JSON: "),
    "huge int": (b'{"n": ' + b"9" * 5000 + b"}", "manifest.json: invalid JSON: "),
    "array": (b"[]", "manifest.json: expected an object, got []"),
    "missing": (with_value(GOOD_MANIFEST, ("files",), KeyError), "manifest.json: missing key 'files'"),
    "unknown": (with_value(GOOD_MANIFEST, ("signature",), "x"), "manifest.json: unknown key 'signature' (allowed: files, format, project, tools)"),
    "format": (with_value(GOOD_MANIFEST, ("format",), "wasm-agents/2"), "manifest.json: format: expected 'wasm-agents/1'"),
    "tools type": (with_value(GOOD_MANIFEST, ("tools",), ["x"]), "manifest.json: tools: expected an object, got ['x']"),
    "tool version": (with_value(GOOD_MANIFEST, ("tools", "x"), 1), 'manifest.json: tools["x"]: expected a string, got 1'),
    "project type": (with_value(GOOD_MANIFEST, ("project",), None), "manifest.json: project: expected an object, got None"),
    "project limit": (
        with_value(GOOD_MANIFEST, ("project", "agents", "agent", "limits", "memory_mb"), 0),
        "manifest.json: project.agents.agent.limits.memory_mb: expected an integer from 1 to 4096, got 0",
    ),
    "key like a path": (
        with_value(GOOD_MANIFEST, ("x` - at `$.files[0]",), 1),
        "manifest.json: unknown key 'x` - at `$.files[0]' (allowed: files, format, project, tools)",
    ),
    "entry type": (with_value(GOOD_MANIFEST, ("files", "a"), "x"), 'manifest.json: files["a"]: expected an object, got \'x\''),
    "entry unknown": (
        with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "mode": 1}),
        "manifest.json: files[\"a\"]: unknown key 'mode' (allowed: sha256, size)",
    ),
    "short hash": (with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "sha256": "ab"}), 'files["a"].sha256: expected 64 lowercase hex'),
    "upper hash": (
        with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "sha256": "A" * 64}),
        'files["a"].sha256: expected 64 lowercase hex',
    ),
    "negative": (with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "size": -1}), 'files["a"].size: expected an integer from 0 to 4294967296, got -1'),
    "huge": (with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "size": 10**30}), 'files["a"].size: expected an integer from 0 to 4294967296, got 1' + "0" * 30),
    "boolean": (with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "size": True}), "expected an integer from 0 to 4294967296, got True"),
    "float": (with_value(GOOD_MANIFEST, ("files", "a"), {**GOOD_ENTRY, "size": 1.0}), "expected an integer from 0 to 4294967296, got 1.0"),
    "dotdot": (with_value(GOOD_MANIFEST, ("files", "../x"), GOOD_ENTRY), "files[\"../x\"]: path contains '..'"),
    "absolute": (with_value(GOOD_MANIFEST, ("files", "/x"), GOOD_ENTRY), 'files["/x"]: absolute path'),
    "backslash": (with_value(GOOD_MANIFEST, ("files", "a\\b"), GOOD_ENTRY), "path contains a backslash"),
    "double slash": (with_value(GOOD_MANIFEST, ("files", "a//b"), GOOD_ENTRY), "path is not normalised"),
    "trailing slash": (with_value(GOOD_MANIFEST, ("files", "a/"), GOOD_ENTRY), "path is not normalised"),
    "empty": (with_value(GOOD_MANIFEST, ("files", ""), GOOD_ENTRY), 'files[""]: empty path'),
    "newline": (with_value(GOOD_MANIFEST, ("files", "a\nb"), GOOD_ENTRY), "control or non-printable character"),
    "self": (with_value(GOOD_MANIFEST, ("files", "manifest.json"), GOOD_ENTRY), 'files["manifest.json"]: is covered by'),
    "file and dir": (with_value(GOOD_MANIFEST, ("files", "components"), GOOD_ENTRY), 'files["components"]: is both a file and a directory'),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_crafted_manifest_is_refused(case: str) -> None:
    data, expected = MANIFEST_CASES[case]
    with pytest.raises(VerificationError) as caught:
        Manifest.from_json(data)
    [problem] = caught.value.problems
    assert problem.startswith("manifest.json: ")
    assert expected in problem


LISTING_CASES = {
    "files type": (with_value(GOOD_LISTING, ("files",), {}), "code-manifest.json: files: expected a list, got {}"),
    "unsorted": (
        with_value(GOOD_LISTING, ("files",), [{"path": "b", **GOOD_ENTRY}, {"path": "a", **GOOD_ENTRY}]),
        "code-manifest.json: files[1].path: not sorted by path",
    ),
    "duplicate": (
        with_value(GOOD_LISTING, ("files",), [{"path": "a", **GOOD_ENTRY}, {"path": "a", **GOOD_ENTRY}]),
        "code-manifest.json: files[1].path: duplicate",
    ),
    "missing path": (with_value(GOOD_LISTING, ("files", 0, "path"), KeyError), "code-manifest.json: files[0]: missing key 'path'"),
    "unsafe path": (with_value(GOOD_LISTING, ("files", 0, "path"), "a/../b"), "code-manifest.json: files[0].path: path contains '..'"),
    "path type": (with_value(GOOD_LISTING, ("files", 0, "path"), 3), "code-manifest.json: files[0].path: expected a string, got 3"),
    "size": (with_value(GOOD_LISTING, ("size",), -5), "code-manifest.json: size: expected an integer from 0 to 4294967296, got -5"),
    "sha256": (with_value(GOOD_LISTING, ("sha256",), None), "code-manifest.json: sha256: expected 64 lowercase hex digits, got None"),
    "artifact": (with_value(GOOD_LISTING, ("artifact",), {}), "code-manifest.json: artifact: expected a string, got {}"),
    "unknown": (with_value(GOOD_LISTING, ("files", 0, "mode"), 420), "code-manifest.json: files[0]: unknown key 'mode' (allowed: path, sha256, size)"),
}


@pytest.mark.parametrize("case", LISTING_CASES)
def test_crafted_artifact_manifest_is_refused(case: str) -> None:
    data, expected = LISTING_CASES[case]
    with pytest.raises(VerificationError) as caught:
        ArtifactManifest.from_json(data, "code-manifest.json")
    assert caught.value.problems == [caught.value.problems[0]]
    assert expected in caught.value.problems[0]


def test_manifests_round_trip() -> None:
    assert Manifest.from_json(json.dumps(GOOD_MANIFEST).encode()).to_json() == (json.dumps(GOOD_MANIFEST, sort_keys=True, indent=2) + "\n").encode()
    listing = ArtifactManifest.from_json(json.dumps(GOOD_LISTING).encode())
    assert listing.files == (FileEntry("a/b", 1, "a" * 64),)
    assert ArtifactManifest.from_json(listing.to_json()) == listing


def test_crafted_manifests_inside_a_sealed_dist_are_named(dist: Path) -> None:
    (dist / "deps-manifest.json").write_bytes(with_value(GOOD_LISTING, ("files", 0, "size"), "1"))
    seal(dist)
    assert problems_of(dist) == ["deps-manifest.json: files[0].size: expected an integer from 0 to 4294967296, got '1'"]
    (dist / "manifest.json").write_bytes(b'{"format": "wasm-agents/1"}')
    (dist / "manifest.json.sha256").write_text(sha256_file(dist / "manifest.json") + "  manifest.json\n")
    assert problems_of(dist) == ["manifest.json: missing key 'tools'"]


# --- any damage to any file is refused ------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    index=st.sampled_from(DIST_FILES),
    damage=st.sampled_from(["flip", "truncate", "append", "delete", "extra"]),
    position=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(min_value=1, max_value=255),
    extra=st.binary(min_size=1, max_size=16),
)
def test_any_damage_is_refused(
    good_dist: Path, index: str, damage: str, position: float, mask: int, extra: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dist = Path(shutil.copytree(good_dist, Path(tmp) / "dist"))
        if damage == "delete":
            (dist / index).unlink()
        elif damage == "extra":  # a new file beside `index`, named from the drawn bytes
            index = f"{index.rsplit('/', 1)[0] + '/' if '/' in index else ''}extra-{extra.hex()}"
            (dist / index).write_bytes(extra)
        else:
            data = bytearray((dist / index).read_bytes())
            at = int(position * len(data))
            if damage == "flip":
                data[at] ^= mask
            elif damage == "truncate":
                del data[at:]
            else:
                data += extra
            (dist / index).write_bytes(bytes(data))
        problems = problems_of(dist)
        assert any(index in problem for problem in problems), problems


# --- extract_verified ------------------------------------------------------------------------------


def listing_of(dist: Path) -> ArtifactManifest:
    return ArtifactManifest.from_json((dist / "code-manifest.json").read_bytes(), "code-manifest.json")


def test_extract_verified_writes_only_the_prefix(good_dist: Path, tmp_path: Path) -> None:
    extract_verified(good_dist / "code-artifact.tar.gz", listing_of(good_dist), tmp_path / "data", "agent/data/")
    written = {str(p.relative_to(tmp_path / "data")): p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file()}
    assert written == {"table.csv": CODE["agent/data/table.csv"], "nested/notes.txt": CODE["agent/data/nested/notes.txt"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_extract_verified_without_members_makes_an_empty_dir(good_dist: Path, tmp_path: Path) -> None:
    extract_verified(good_dist / "code-artifact.tar.gz", listing_of(good_dist), tmp_path / "data", "agent-multiplier/data")
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize("damage", ["tampered member", "extra member", "truncated"])
def test_extract_verified_refuses_and_leaves_nothing(good_dist: Path, tmp_path: Path, damage: str) -> None:
    files = dict(CODE)
    if damage == "tampered member":
        files["agent/data/table.csv"] = b"a,b\n6,6\n"
    elif damage == "extra member":
        files["agent/data/nested/zzz"] = b"surprise"
    archive = crafted_tar([member(path, data) for path, data in sorted(files.items())])
    if damage == "truncated":
        archive = archive[: len(archive) - 20]
    (tmp_path / "code.tar.gz").write_bytes(archive)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VerificationError) as caught:
        extract_verified(tmp_path / "code.tar.gz", listing_of(good_dist), out / "data", "agent/data/")
    assert caught.value.problems[0].startswith("code.tar.gz: ")
    assert list(out.iterdir()) == []


def test_extract_verified_applies_member_safety_rules(good_dist: Path, tmp_path: Path) -> None:
    members = [member(path, data) for path, data in sorted(CODE.items())]
    members.append(member("agent/data/link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"))
    (tmp_path / "code.tar.gz").write_bytes(crafted_tar(members))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(VerificationError, match="member agent/data/link: is a symlink"):
        extract_verified(tmp_path / "code.tar.gz", listing_of(good_dist), out / "data", "agent/data/")
    assert list(out.iterdir()) == []


def test_dist_fixture_is_untouched(good_dist: Path) -> None:
    # The module-scoped dist is shared: every test above must have copied it before damaging it.
    verify_dist(good_dist)
    assert not any(stat.S_ISLNK(p.lstat().st_mode) for p in good_dist.rglob("*"))


def test_load_artifact_manifest_checks_manifest_json(good_dist: Path, dist: Path) -> None:
    manifest = verify_dist(good_dist).manifest
    assert load_artifact_manifest(good_dist, manifest, "code-manifest.json") == listing_of(good_dist)
    (dist / "code-manifest.json").write_bytes((dist / "deps-manifest.json").read_bytes())
    with pytest.raises(VerificationError, match="code-manifest.json: sha256 mismatch: expected "):
        load_artifact_manifest(dist, manifest, "code-manifest.json")
