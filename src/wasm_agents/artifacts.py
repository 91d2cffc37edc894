"""The files of dist/: reproducible archives, their manifests, and the one routine that verifies them.

Every byte of a dist is covered by a SHA256: manifest.json lists every other file, and
manifest.json.sha256 covers manifest.json. A signed dist also holds manifest.json.sig, a signature
over the bytes of manifest.json that a trust policy checks (see signing). Archives hold regular files only (no directory
members), so the set of members must equal the archive manifest's "files" exactly.
"""

import gzip
import hashlib
import json
import os
import re
import reprlib
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, Self

from wasm_agents.errors import BuildError, VerificationError
from wasm_agents.paths import cache_dir
from wasm_agents.signing import Signature, TrustPolicy

FORMAT = "wasm-agents/1"
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.json.sha256"
SIGNATURE = "manifest.json.sig"
PROVENANCE = "provenance.json"
CODE_ARTIFACT = "code-artifact.tar.gz"
CODE_MANIFEST = "code-manifest.json"
DEPS_ARTIFACT = "deps-artifact.tar.gz"
DEPS_MANIFEST = "deps-manifest.json"
RUNTIME_ARTIFACT = "runtime-artifact.tar.gz"
RUNTIME_MANIFEST = "runtime-manifest.json"
RUNTIME_STDLIB, RUNTIME_SANDBOX = "python", "sandbox"  # the runtime archive's folders: the guest's stdlib, its sandbox modules
COMPONENTS = "components"

# Each archive of a dist and the manifest listing its members.
ARTIFACTS = {CODE_ARTIFACT: CODE_MANIFEST, DEPS_ARTIFACT: DEPS_MANIFEST, RUNTIME_ARTIFACT: RUNTIME_MANIFEST}

# Components are ~20 MB and archives smaller still: sizes beyond these are refused as absurd.
MAX_FILE_SIZE = 4 << 30
MAX_UNPACKED_SIZE = 4 << 30
MAX_MANIFEST_SIZE = 16 << 20
MAX_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 255  # what common filesystems allow per path component

# zlib's default level: close to level 9's ratio at a fraction of its time on large vendored deps.
COMPRESSLEVEL = 6

# A tar member costs its content plus at most 511 bytes of padding, a 512-byte header and a PAX
# header (512 bytes plus a path of at most MAX_PATH_LENGTH); the archive ends within two records.
_MEMBER_OVERHEAD = 4096
_ARCHIVE_OVERHEAD = 2 * tarfile.RECORDSIZE

_CHUNK = 1 << 20
_SHA256 = re.compile("[0-9a-f]{64}")
_SHA256_LINE = re.compile(rb"([0-9a-f]{64})  " + re.escape(MANIFEST.encode()) + rb"\n")
_KINDS = {
    tarfile.DIRTYPE: "a directory",
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hardlink",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
}


@dataclass(frozen=True)
class FileEntry:
    """One file's path (relative, "/"-separated), size in bytes and hex SHA256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """manifest.json: the tool versions, the project, and every file of the dist but the manifest files and signature.

    `signed_by` is not part of manifest.json: verify_dist sets it to the key id of the dist's signature.
    """

    format: str
    tools: dict[str, str]
    project: dict[str, Any]
    files: dict[str, FileEntry]
    signed_by: str | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, data: bytes, source: str = MANIFEST) -> Self:
        """Parse and strictly validate manifest.json; `source` names the file in problems."""
        obj = _object(_load(data, source), {"format", "tools", "project", "files"}, source, "")
        if obj["format"] != FORMAT:
            _fail(source, "format", f"expected {FORMAT!r}, got {reprlib.repr(obj['format'])}")
        tools = _object(obj["tools"], None, source, "tools")
        for name, value in tools.items():
            _string(value, source, f"tools[{json.dumps(name)}]")
        project = _object(obj["project"], None, source, "project")
        files = {}
        for path, value in _object(obj["files"], None, source, "files").items():
            where = f"files[{json.dumps(path)}]"
            if _path(path, source, where) in (MANIFEST, MANIFEST_SHA256):
                _fail(source, where, f"is covered by {MANIFEST_SHA256}, not listed")
            if path == SIGNATURE:
                _fail(source, where, f"is the signature of {MANIFEST}, which cannot list it")
            files[path] = _entry(_object(value, {"size", "sha256"}, source, where), path, source, where)
        _check_no_file_is_a_directory(files, source, "files")
        return cls(obj["format"], tools, project, files)

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        files = {path: {"size": entry.size, "sha256": entry.sha256} for path, entry in self.files.items()}
        return _dump({"format": self.format, "tools": self.tools, "project": self.project, "files": files})


@dataclass(frozen=True)
class ArtifactManifest:
    """code-manifest.json or deps-manifest.json: an archive's name, size, SHA256 and members sorted by path."""

    artifact: str
    size: int
    sha256: str
    files: tuple[FileEntry, ...]

    @classmethod
    def from_json(cls, data: bytes, source: str = "artifact manifest") -> Self:
        """Parse and strictly validate an artifact manifest; `source` names the file in problems."""
        obj = _object(_load(data, source), {"artifact", "size", "sha256", "files"}, source, "")
        if not isinstance(obj["files"], list):
            _fail(source, "files", f"expected an array, got {_json_type(obj['files'])}")
        files = []
        for index, value in enumerate(obj["files"]):
            where = f"files[{index}]"
            item = _object(value, {"path", "size", "sha256"}, source, where)
            path = _path(item["path"], source, f"{where}.path")
            if files and path <= files[-1].path:
                _fail(source, f"{where}.path", "duplicate" if path == files[-1].path else "not sorted by path")
            files.append(_entry(item, path, source, where))
        _check_no_file_is_a_directory({entry.path: entry for entry in files}, source, "files")
        return cls(
            _string(obj["artifact"], source, "artifact"),
            _size(obj["size"], source, "size"),
            _sha256(obj["sha256"], source, "sha256"),
            tuple(files),
        )

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        files = [{"path": entry.path, "size": entry.size, "sha256": entry.sha256} for entry in self.files]
        return _dump({"artifact": self.artifact, "size": self.size, "sha256": self.sha256, "files": files})


def sha256_file(path: Path) -> str:
    """Return the hex SHA256 of the file at `path`, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def component_path(agent: str) -> str:
    """Return where the component of `agent` lives, relative to dist/."""
    return f"{COMPONENTS}/{agent}.wasm"


def write_reproducible_tar(source_dir: Path, archive_path: Path) -> None:
    """Write every regular file under `source_dir` to a gzip tar whose bytes depend only on paths, contents and exec bits.

    Directories are not archived (empty ones vanish); symlinks and special files are refused.
    """
    mtime = _source_date_epoch()
    paths = _regular_files(source_dir)
    with (
        open(archive_path, "wb") as raw,
        # An empty filename keeps the archive's own name out of the gzip header.
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=COMPRESSLEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for path in paths:
            with open(source_dir / path, "rb") as f:
                st = os.fstat(f.fileno())
                info = tarfile.TarInfo(path)
                info.size = st.st_size
                info.mtime = mtime
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, f)


def artifact_manifest(archive_path: Path, artifact_name: str) -> ArtifactManifest:
    """Describe the archive at `archive_path` and its members; raise VerificationError if a member is unsafe."""
    problems: list[str] = []
    files = []
    with open(archive_path, "rb") as f, _open_tar(f, MAX_UNPACKED_SIZE) as tar:
        for member in _safe_members(tar, artifact_name, problems):
            files.append(FileEntry(member.name, member.size, _hash_member(tar, member)))
    if problems:
        raise VerificationError(problems)
    files.sort(key=lambda entry: entry.path)
    return ArtifactManifest(artifact_name, archive_path.stat().st_size, sha256_file(archive_path), tuple(files))


def verify_dist(dist: Path, trust: TrustPolicy | None = None, *, members: bool = True) -> Manifest:
    """Check every byte of `dist` against its manifests, and its signature against `trust` if given.

    With `members=False` the archives' members are not read (their archives' SHA256 still is): for a
    caller that only uses archives through `unpacked`, which checks every member when it extracts.
    Raise one VerificationError listing every problem.
    """
    if not dist.is_dir():
        raise VerificationError([f"{dist}: no such dist directory"])
    problems: list[str] = []
    manifest = _load_manifest(dist, trust, problems)
    if manifest is None:
        # Without manifest.json nothing else can be checked against anything.
        raise VerificationError(problems)
    directories = _directories(manifest.files)
    found = _walk(dist, directories.__contains__)
    expected = manifest.files.keys() | directories | {MANIFEST, MANIFEST_SHA256, SIGNATURE}
    for path, kind in sorted(found.items()):
        if path not in expected:
            problems.append(f"{_display(path)}: unexpected {kind} (not in {MANIFEST})")
    regular = [entry for path, entry in manifest.files.items() if found.get(path) == "file"]
    # Hashing is most of the work and hashlib lets go of the GIL: the files are hashed in parallel.
    with ThreadPoolExecutor(max(1, min(len(regular), os.cpu_count() or 1))) as pool:
        file_problems = dict(zip((entry.path for entry in regular), pool.map(partial(_file_problem, dist), regular), strict=True))
    verified = set()
    for path in sorted(manifest.files):
        kind = found.get(path)
        if kind is None:
            problems.append(f"{path}: missing")
        elif kind != "file":
            problems.append(f"{path}: is a {kind}, not a regular file")
        elif file_problems[path] is not None:
            problems.append(file_problems[path])
        else:
            verified.add(path)
    for archive, listing in ARTIFACTS.items():
        _check_artifact(dist, manifest, archive, listing, verified, problems, members)
    if problems and trust is not None and manifest.signed_by is not None:
        problems.append(
            f"{SIGNATURE}: {MANIFEST} carries a valid signature by trusted key {manifest.signed_by}, "
            "but the dist differs from what was signed"
        )
    if problems:
        raise VerificationError(problems)
    return manifest


def load_artifact_manifest(dist: Path, manifest: Manifest, listing: str) -> ArtifactManifest:
    """Read and parse the artifact manifest `listing` of `dist`, refusing it unless it matches `manifest`.

    Use this rather than reading the file directly after verify_dist: it may have changed since.
    """
    problems: list[str] = []
    data = _read_small(dist / listing, listing, problems)
    if data is None:
        raise VerificationError(problems)
    if listing not in manifest.files:
        raise VerificationError([f"{listing}: not listed in {MANIFEST}"])
    if (digest := hashlib.sha256(data).hexdigest()) != manifest.files[listing].sha256:
        raise VerificationError([f"{listing}: {_sha256_mismatch(manifest.files[listing].sha256, digest)}"])
    return ArtifactManifest.from_json(data, listing)


def extract_verified(archive_path: Path, manifest: ArtifactManifest, dest: Path, prefix: str) -> None:
    """Extract the members under `prefix` ("" for all) into the new directory `dest`, checking each against `manifest` as it is written.

    Members are written into a temporary sibling of `dest` that is renamed into place only once all
    of them matched, so a failure leaves nothing behind. `dest` must not exist.
    """
    if prefix and (problem := _path_problem(prefix.rstrip("/"))):
        raise ValueError(f"invalid prefix {prefix!r}: {problem}")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    archive = archive_path.name
    wanted = {entry.path: entry for entry in manifest.files if entry.path.startswith(prefix)}
    problems: list[str] = []
    written = set()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-tmp-", dir=dest.parent))
    try:
        try:
            with _open_nofollow(archive_path) as f, _open_tar(f, _unpacked_limit(manifest)) as tar:
                for member in _safe_members(tar, archive, problems):
                    if not member.name.startswith(prefix):
                        continue
                    entry = wanted.get(member.name)
                    if problem := _header_mismatch(member, entry, "its artifact manifest"):
                        problems.append(f"{archive}: member {member.name}: {problem}")
                        continue
                    target = tmp / member.name.removeprefix(prefix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "xb") as out:
                        digest = _hash_member(tar, member, out)
                    if digest != entry.sha256:
                        problems.append(f"{archive}: member {member.name}: {_sha256_mismatch(entry.sha256, digest)}")
                    written.add(member.name)
        except _UNREADABLE as e:
            problems.append(f"{archive}: unreadable archive: {e}")
        problems.extend(_missing(archive, wanted.keys() - written, "its artifact manifest"))
        if problems:
            raise VerificationError(problems)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def unpacked(dist: Path, manifest: Manifest, archive: str) -> Path:
    """Return a folder holding every member of `archive` of `dist`, whose `manifest` verify_dist returned.

    The folder lives in this host's cache, named by the SHA256 of the archive and of its listing, and is
    written once, by extract_verified (which checks every member against the listing): a later call for
    the same bytes finds it in place and reads nothing.
    """
    key = hashlib.sha256(f"{manifest.files[archive].sha256};{manifest.files[ARTIFACTS[archive]].sha256}".encode()).hexdigest()
    folder = cache_dir("unpacked") / key
    if not folder.is_dir():
        try:
            extract_verified(dist / archive, load_artifact_manifest(dist, manifest, ARTIFACTS[archive]), folder, "")
        except OSError:
            if not folder.is_dir():  # another process extracted the same archive first
                raise
    return folder


class _ArchiveTooLarge(Exception):
    """An archive decompresses to more bytes than its manifest allows."""


# What reading a damaged or hostile gzip tar can raise (tarfile raises ValueError on some malformed PAX headers).
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, _ArchiveTooLarge)


class _CappedReader:
    """A read-only stream that raises _ArchiveTooLarge once more than `limit` bytes were read from it."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self._f = f
        self._limit = limit
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all, if negative), but never more than one byte past the limit."""
        if size < 0 or size > self._left + 1:
            size = self._left + 1
        data = self._f.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise _ArchiveTooLarge(f"decompresses to more than {self._limit} bytes")
        return data


@contextmanager
def _open_tar(f: BinaryIO, limit: int) -> Iterator[tarfile.TarFile]:
    """Open the gzip tar `f` for one sequential pass that decompresses at most `limit` bytes."""
    # Decompress outside tarfile ("r|", not "r|gz") so that _CappedReader counts decompressed bytes.
    with (
        gzip.GzipFile(fileobj=f, mode="rb") as gz,
        tarfile.open(fileobj=_CappedReader(gz, limit), mode="r|", encoding="utf-8") as tar,
    ):
        yield tar


def _safe_members(tar: tarfile.TarFile, archive: str, problems: list[str]) -> Iterator[tarfile.TarInfo]:
    """Yield every member that is a regular file with a safe, first-seen path; record a problem for any other."""
    seen = set()
    while (member := tar.next()) is not None:
        problem = _member_problem(member) or ("duplicate member" if member.name in seen else None)
        seen.add(member.name)
        if problem:
            problems.append(f"{archive}: member {_display(member.name)}: {problem}")
        else:
            yield member


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Say why `member` may not be in an archive, if it may not."""
    if problem := _path_problem(member.name):
        return problem
    if member.type != tarfile.REGTYPE:
        return f"is {_KINDS.get(member.type, f'of unsupported type {member.type!r}')}, not a regular file"
    if member.sparse is not None:
        return "is a sparse file, not a regular file"
    return None


def _header_mismatch(member: tarfile.TarInfo, entry: FileEntry | None, listing: str) -> str | None:
    """Say why `member`'s header does not match `entry`, before any of its content is read."""
    if entry is None:
        return f"not listed in {listing}"
    if member.size != entry.size:
        return f"size mismatch: expected {entry.size}, header says {member.size}"
    return None


def _hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo, sink: BinaryIO | None = None) -> str:
    """Return the hex SHA256 of `member`'s content, streaming it to `sink` too if given."""
    f = tar.extractfile(member)
    assert f is not None  # members are regular files
    sha = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        sha.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return sha.hexdigest()


def _missing(archive: str, paths: Iterable[str], listing: str) -> list[str]:
    """Return one problem line for each listed member that the archive lacks."""
    return [f"{archive}: member {path}: missing (listed in {listing})" for path in sorted(paths)]


def _unpacked_limit(manifest: ArtifactManifest) -> int:
    """Bound the bytes an archive may decompress to by what its manifest declares, so a bomb stops early."""
    declared = sum(entry.size + _MEMBER_OVERHEAD for entry in manifest.files) + _ARCHIVE_OVERHEAD
    return min(declared, MAX_UNPACKED_SIZE)


def _load_manifest(dist: Path, trust: TrustPolicy | None, problems: list[str]) -> Manifest | None:
    """Read manifest.json, check it against manifest.json.sha256 and its signature, and parse it.

    The parsed manifest's `signed_by` is the key id of a well-formed signature that satisfies `trust`,
    or with no `trust` of any well-formed signature; otherwise None.
    """
    line = _read_small(dist / MANIFEST_SHA256, MANIFEST_SHA256, problems)
    expected = None
    if line is not None:
        if match := _SHA256_LINE.fullmatch(line):
            expected = match[1].decode()
        else:
            problems.append(f"{MANIFEST_SHA256}: malformed: expected one line '<sha256>  {MANIFEST}'")
    data = _read_small(dist / MANIFEST, MANIFEST, problems)
    if data is None:
        return None
    if expected is not None and (actual := hashlib.sha256(data).hexdigest()) != expected:
        problems.append(f"{MANIFEST}: does not match {MANIFEST_SHA256}: expected {expected}, got {actual}")
    signed_by = _check_signature(dist, data, trust, problems)
    try:
        return replace(Manifest.from_json(data), signed_by=signed_by)
    except VerificationError as e:
        problems.extend(e.problems)
        return None


def _check_signature(dist: Path, manifest_data: bytes, trust: TrustPolicy | None, problems: list[str]) -> str | None:
    """Check the signature file, if any, and its signature over `manifest_data` under `trust`; return its key id if it passes."""
    signature = None
    if os.path.lexists(dist / SIGNATURE):
        unusable: list[str] = []
        data = _read_small(dist / SIGNATURE, SIGNATURE, unusable)
        try:
            signature = None if data is None else Signature.from_json(data)
        except ValueError as e:
            unusable.append(f"{SIGNATURE}: malformed: {e}")
        if unusable:
            problems.extend(f"{problem} ({trust.describe()})" if trust else problem for problem in unusable)
            return None
    if trust is not None and (problem := trust.check(signature, manifest_data)):
        problems.append(f"{SIGNATURE}: {problem}")
        return None
    return signature and signature.key_id


def _file_problem(dist: Path, entry: FileEntry) -> str | None:
    """Return what is wrong with the file of `entry` (its size or SHA256), or None if it is as listed."""
    try:
        with _open_nofollow(dist / entry.path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != entry.size:
                return f"{entry.path}: size mismatch: expected {entry.size}, got {size}"
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        return f"{entry.path}: cannot read: {e.strerror}"
    if digest != entry.sha256:
        return f"{entry.path}: {_sha256_mismatch(entry.sha256, digest)}"
    return None


def _check_artifact(
    dist: Path, manifest: Manifest, archive: str, listing: str, verified: set[str], problems: list[str], members: bool
) -> None:
    """Check the artifact manifest `listing` against `archive`, and every member of `archive` against it."""
    for name in (archive, listing):
        if name not in manifest.files:
            problems.append(f"{name}: not listed in {MANIFEST}")
    if not {archive, listing} <= verified:
        # Already reported; the members of a file that fails its own hash are not worth reading.
        return
    try:
        artifact = load_artifact_manifest(dist, manifest, listing)
    except VerificationError as e:
        problems.extend(e.problems)
        return
    entry = manifest.files[archive]
    if artifact.artifact != archive:
        problems.append(f"{listing}: artifact: expected {archive!r}, got {reprlib.repr(artifact.artifact)}")
    if artifact.size != entry.size:
        problems.append(f"{listing}: size: expected {entry.size} (the size of {archive}), got {artifact.size}")
    if artifact.sha256 != entry.sha256:
        problems.append(f"{listing}: sha256: expected {entry.sha256} (the sha256 of {archive}), got {artifact.sha256}")
    if members:
        problems.extend(_member_problems(dist / archive, artifact, listing))


def _member_problems(path: Path, manifest: ArtifactManifest, listing: str) -> list[str]:
    """Return a problem line for each member of the archive at `path` that is unsafe or does not match `manifest`."""
    archive = path.name
    expected = {entry.path: entry for entry in manifest.files}
    problems: list[str] = []
    seen = set()
    try:
        with _open_nofollow(path) as f, _open_tar(f, _unpacked_limit(manifest)) as tar:
            for member in _safe_members(tar, archive, problems):
                seen.add(member.name)
                entry = expected.get(member.name)
                if problem := _header_mismatch(member, entry, listing):
                    problems.append(f"{archive}: member {member.name}: {problem}")
                elif (digest := _hash_member(tar, member)) != entry.sha256:
                    problems.append(f"{archive}: member {member.name}: {_sha256_mismatch(entry.sha256, digest)}")
    except _UNREADABLE as e:
        # Members after the damage were never seen: listing them as missing would only repeat this.
        return [*problems, f"{archive}: unreadable archive: {e}"]
    return problems + _missing(archive, expected.keys() - seen, listing)


def _sha256_mismatch(expected: str, actual: str) -> str:
    """Describe a hash mismatch."""
    return f"sha256 mismatch: expected {expected}, got {actual}"


def _read_small(path: Path, name: str, problems: list[str]) -> bytes | None:
    """Return the content of the regular file `path` if it is at most MAX_MANIFEST_SIZE, else record why not."""
    try:
        kind = _kind(os.lstat(path).st_mode)
        if kind != "file":
            problems.append(f"{name}: is a {kind}, not a regular file")
            return None
        with _open_nofollow(path) as f:
            data = f.read(MAX_MANIFEST_SIZE + 1)
    except FileNotFoundError:
        problems.append(f"{name}: missing")
        return None
    except OSError as e:
        problems.append(f"{name}: cannot read: {e.strerror}")
        return None
    if len(data) > MAX_MANIFEST_SIZE:
        problems.append(f"{name}: larger than the limit of {MAX_MANIFEST_SIZE} bytes")
        return None
    return data


def _open_nofollow(path: Path) -> BinaryIO:
    """Open `path` for reading, failing if it is a symlink."""
    # Walks have already refused symlinks; this closes the gap where one is swapped in afterwards.
    return open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _walk(root: Path, descend: Callable[[str], bool]) -> dict[str, str]:
    """Map each path under `root` ("/"-separated) to its kind, entering only the directories `descend` accepts."""
    found = {}
    pending = [""]
    while pending:
        parent = pending.pop()
        with os.scandir(root / parent) as entries:
            for entry in entries:
                path = f"{parent}/{entry.name}" if parent else entry.name
                found[path] = _kind(entry.stat(follow_symlinks=False).st_mode)
                if found[path] == "directory" and descend(path):
                    pending.append(path)
    return found


def _kind(mode: int) -> str:
    """Name the kind of file `mode` describes, without following symlinks."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special file"


def _directories(paths: Iterable[str]) -> set[str]:
    """Return every directory that contains one of `paths`."""
    return {path[:index] for path in paths for index, char in enumerate(path) if char == "/"}


def _regular_files(root: Path) -> list[str]:
    """Return the sorted paths of the regular files under `root`; refuse symlinks, special files and unsafe names."""
    found = _walk(root, lambda path: True)
    for path, kind in sorted(found.items()):
        if kind not in ("file", "directory"):
            raise BuildError(f"{_display(str(root / path))}: is a {kind}; only regular files and directories can be packaged")
        if problem := _path_problem(path):
            raise BuildError(f"{_display(str(root / path))}: cannot be packaged: {problem}")
    return sorted(path for path, kind in found.items() if kind == "file")


def _source_date_epoch() -> int:
    """Return the archive timestamp: SOURCE_DATE_EPOCH if set, else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise BuildError(f"SOURCE_DATE_EPOCH must be a non-negative integer, got {value!r}")
    return int(value)


def _path_problem(path: str) -> str | None:
    """Say why `path` is not a safe, normalised, relative "/"-separated path, if it is not."""
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    parts = path.split("/")
    if not path:
        return "empty path"
    if len(encoded) > MAX_PATH_LENGTH:
        return f"path longer than {MAX_PATH_LENGTH} bytes"
    if any(len(part.encode()) > MAX_NAME_LENGTH for part in parts):
        return f"path has a name longer than {MAX_NAME_LENGTH} bytes"
    if not path.isprintable():
        return "path contains a control or non-printable character"
    if "\\" in path:
        return "path contains a backslash"
    if path.startswith("/"):
        return "absolute path"
    if ".." in parts:
        return "path contains '..'"
    if "" in parts or "." in parts:
        return "path is not normalised"
    return None


def _display(path: str) -> str:
    """Return `path` as it can be shown on one line."""
    return path if path.isprintable() else repr(path)


def _check_no_file_is_a_directory(files: dict[str, FileEntry], source: str, where: str) -> None:
    """Refuse a listing where one path is a directory of another: no archive or folder can hold both."""
    for path in sorted(_directories(files).intersection(files)):
        _fail(source, f"{where}[{json.dumps(path)}]", "is both a file and a directory of other files")


def _entry(item: dict[str, Any], path: str, source: str, where: str) -> FileEntry:
    """Return the entry of `path` after validating the size and sha256 of its object."""
    return FileEntry(path, _size(item["size"], source, f"{where}.size"), _sha256(item["sha256"], source, f"{where}.sha256"))


def _load(data: bytes, source: str) -> object:
    """Parse strict JSON: UTF-8, no duplicate keys, no NaN or Infinity."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        _fail(source, "", f"invalid JSON: {e}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing duplicate keys (parsers disagree on which one wins)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [key for key, _ in pairs]
        raise ValueError(f"duplicate key {next(key for key in keys if keys.count(key) > 1)!r}")
    return obj


def _no_constant(name: str) -> NoReturn:
    """Refuse NaN and Infinity, which are not JSON."""
    raise ValueError(f"{name} is not allowed")


def _object(value: object, keys: set[str] | None, source: str, where: str) -> dict[str, Any]:
    """Return `value` if it is a JSON object with exactly `keys` (any keys if None)."""
    if not isinstance(value, dict):
        _fail(source, where, f"expected an object, got {_json_type(value)}")
    if keys is not None:
        prefix = f"{where}." if where else ""
        if missing := sorted(keys - value.keys()):
            _fail(source, prefix + missing[0], "missing")
        if unknown := sorted(value.keys() - keys):
            _fail(source, prefix + unknown[0], "unknown key")
    return value


def _string(value: object, source: str, where: str) -> str:
    """Return `value` if it is a string."""
    if not isinstance(value, str):
        _fail(source, where, f"expected a string, got {_json_type(value)}")
    return value


def _size(value: object, source: str, where: str) -> int:
    """Return `value` if it is a plausible size in bytes."""
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(source, where, f"expected an integer, got {_json_type(value)}")
    if not 0 <= value <= MAX_FILE_SIZE:
        _fail(source, where, f"{reprlib.repr(value)} is outside 0..{MAX_FILE_SIZE}")
    return value


def _sha256(value: object, source: str, where: str) -> str:
    """Return `value` if it is a lowercase hex SHA256."""
    if not _SHA256.fullmatch(_string(value, source, where)):
        _fail(source, where, f"expected 64 lowercase hex digits, got {reprlib.repr(value)}")
    return value


def _path(value: object, source: str, where: str) -> str:
    """Return `value` if it is a safe relative path."""
    if problem := _path_problem(_string(value, source, where)):
        _fail(source, where, f"{problem}: {reprlib.repr(value)}")
    return value


def _json_type(value: object) -> str:
    """Name the JSON type of a parsed value."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return names.get(type(value), "null")


def _fail(source: str, where: str, message: str) -> NoReturn:
    """Raise the VerificationError for one invalid manifest value."""
    raise VerificationError([f"{source}: {where}: {message}" if where else f"{source}: {message}"])


def _dump(obj: object) -> bytes:
    """Serialise `obj` deterministically."""
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()
