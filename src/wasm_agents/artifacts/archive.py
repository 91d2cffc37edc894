"""Archives: reproducible gzip tars of regular files, and reading them back in one capped, checked pass."""

import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from wasm_agents.artifacts.files import display, open_nofollow, path_problem, regular_files, sha256_file, sha256_mismatch
from wasm_agents.artifacts.model import ArtifactManifest, FileEntry
from wasm_agents.errors import BuildError, VerificationError

MAX_UNPACKED_SIZE = 4 << 30  # what an archive may decompress to: more is refused as absurd

# zlib's default level: close to level 9's ratio at a fraction of its time on large vendored deps.
COMPRESSLEVEL = 6

# A tar member costs its content plus at most 511 bytes of padding, a 512-byte header and a PAX
# header (512 bytes plus a path of at most MAX_PATH_LENGTH); the archive ends within two records.
_MEMBER_OVERHEAD = 4096
_ARCHIVE_OVERHEAD = 2 * tarfile.RECORDSIZE

_CHUNK = 1 << 20
_KINDS = {
    tarfile.DIRTYPE: "a directory",
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hardlink",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
}


def write_reproducible_tar(source_dir: Path, archive_path: Path) -> None:
    """Write every regular file under `source_dir` to a gzip tar whose bytes depend only on paths, contents and exec bits.

    Directories are not archived (empty ones vanish); symlinks and special files are refused.
    """
    mtime = _source_date_epoch()
    paths = regular_files(source_dir)
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
    with open(archive_path, "rb") as f, open_tar(f, MAX_UNPACKED_SIZE) as tar:
        for member in safe_members(tar, artifact_name, problems):
            files.append(FileEntry(member.name, member.size, hash_member(tar, member)))
    if problems:
        raise VerificationError(problems)
    files.sort(key=lambda entry: entry.path)
    return ArtifactManifest(artifact_name, archive_path.stat().st_size, sha256_file(archive_path), tuple(files))


def extract_verified(archive_path: Path, manifest: ArtifactManifest, dest: Path, prefix: str) -> None:
    """Extract the members under `prefix` ("" for all) into the new directory `dest`, checking each against `manifest` as it is written.

    Members are written into a temporary sibling of `dest` that is renamed into place only once all
    of them matched, so a failure leaves nothing behind. `dest` must not exist.
    """
    if prefix and (problem := path_problem(prefix.rstrip("/"))):
        raise ValueError(f"invalid prefix {prefix!r}: {problem}")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    archive = archive_path.name
    wanted = {entry.path: entry for entry in manifest.files if entry.path.startswith(prefix)}
    problems: list[str] = []
    written = set()
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-tmp-", dir=dest.parent))
    try:
        try:
            with open_nofollow(archive_path) as f, open_tar(f, unpacked_limit(manifest)) as tar:
                for member in safe_members(tar, archive, problems):
                    if not member.name.startswith(prefix):
                        continue
                    entry = wanted.get(member.name)
                    if problem := header_mismatch(member, entry, "its artifact manifest"):
                        problems.append(f"{archive}: member {member.name}: {problem}")
                        continue
                    target = tmp / member.name.removeprefix(prefix)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "xb") as out:
                        digest = hash_member(tar, member, out)
                    if digest != entry.sha256:
                        problems.append(f"{archive}: member {member.name}: {sha256_mismatch(entry.sha256, digest)}")
                    written.add(member.name)
        except UNREADABLE as e:
            problems.append(f"{archive}: unreadable archive: {e}")
        problems.extend(missing(archive, wanted.keys() - written, "its artifact manifest"))
        if problems:
            raise VerificationError(problems)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class _ArchiveTooLarge(Exception):
    """An archive decompresses to more bytes than its manifest allows."""

# What reading a damaged or hostile gzip tar can raise (tarfile raises ValueError on some malformed PAX headers).
UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError, _ArchiveTooLarge)


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
def open_tar(f: BinaryIO, limit: int) -> Iterator[tarfile.TarFile]:
    """Open the gzip tar `f` for one sequential pass that decompresses at most `limit` bytes."""
    # Decompress outside tarfile ("r|", not "r|gz") so that _CappedReader counts decompressed bytes.
    with (
        gzip.GzipFile(fileobj=f, mode="rb") as gz,
        tarfile.open(fileobj=_CappedReader(gz, limit), mode="r|", encoding="utf-8") as tar,
    ):
        yield tar


def safe_members(tar: tarfile.TarFile, archive: str, problems: list[str]) -> Iterator[tarfile.TarInfo]:
    """Yield every member that is a regular file with a safe, first-seen path; record a problem for any other."""
    seen = set()
    while (member := tar.next()) is not None:
        problem = _member_problem(member) or ("duplicate member" if member.name in seen else None)
        seen.add(member.name)
        if problem:
            problems.append(f"{archive}: member {display(member.name)}: {problem}")
        else:
            yield member


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Say why `member` may not be in an archive, if it may not."""
    if problem := path_problem(member.name):
        return problem
    if member.type != tarfile.REGTYPE:
        return f"is {_KINDS.get(member.type, f'of unsupported type {member.type!r}')}, not a regular file"
    if member.sparse is not None:
        return "is a sparse file, not a regular file"
    return None


def header_mismatch(member: tarfile.TarInfo, entry: FileEntry | None, listing: str) -> str | None:
    """Say why `member`'s header does not match `entry`, before any of its content is read."""
    if entry is None:
        return f"not listed in {listing}"
    if member.size != entry.size:
        return f"size mismatch: expected {entry.size}, header says {member.size}"
    return None


def hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo, sink: BinaryIO | None = None) -> str:
    """Return the hex SHA256 of `member`'s content, streaming it to `sink` too if given."""
    f = tar.extractfile(member)
    assert f is not None  # members are regular files
    sha = hashlib.sha256()
    while chunk := f.read(_CHUNK):
        sha.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return sha.hexdigest()


def missing(archive: str, paths: Iterable[str], listing: str) -> list[str]:
    """Return one problem line for each listed member that the archive lacks."""
    return [f"{archive}: member {path}: missing (listed in {listing})" for path in sorted(paths)]


def unpacked_limit(manifest: ArtifactManifest) -> int:
    """Bound the bytes an archive may decompress to by what its manifest declares, so a bomb stops early."""
    declared = sum(entry.size + _MEMBER_OVERHEAD for entry in manifest.files) + _ARCHIVE_OVERHEAD
    return min(declared, MAX_UNPACKED_SIZE)


def member_problems(path: Path, manifest: ArtifactManifest, listing: str) -> list[str]:
    """Return a problem line for each member of the archive at `path` that is unsafe or does not match `manifest`."""
    archive = path.name
    expected = {entry.path: entry for entry in manifest.files}
    problems: list[str] = []
    seen = set()
    try:
        with open_nofollow(path) as f, open_tar(f, unpacked_limit(manifest)) as tar:
            for member in safe_members(tar, archive, problems):
                seen.add(member.name)
                entry = expected.get(member.name)
                if problem := header_mismatch(member, entry, listing):
                    problems.append(f"{archive}: member {member.name}: {problem}")
                elif (digest := hash_member(tar, member)) != entry.sha256:
                    problems.append(f"{archive}: member {member.name}: {sha256_mismatch(entry.sha256, digest)}")
    except UNREADABLE as e:
        # Members after the damage were never seen: listing them as missing would only repeat this.
        return [*problems, f"{archive}: unreadable archive: {e}"]
    return problems + missing(archive, expected.keys() - seen, listing)


def _source_date_epoch() -> int:
    """Return the archive timestamp: SOURCE_DATE_EPOCH if set, else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise BuildError(f"SOURCE_DATE_EPOCH must be a non-negative integer, got {value!r}")
    return int(value)
