"""Files and paths: hashing, walking a folder without following symlinks, and what makes a relative path safe."""

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from wasm_agents.errors import BuildError, VerificationError

if TYPE_CHECKING:
    from wasm_agents.artifacts.model import FileEntry

MAX_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 255  # what common filesystems allow per path component
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Return the hex SHA256 of the file at `path`, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_mismatch(expected: str, actual: str) -> str:
    """Describe a hash mismatch."""
    return f"sha256 mismatch: expected {expected}, got {actual}"


def open_nofollow(path: Path) -> BinaryIO:
    """Open `path` for reading, failing if it is a symlink."""
    # Walks have already refused symlinks; this closes the gap where one is swapped in afterwards.
    return open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def copy_verified(source: Path, entry: "FileEntry", target: Path) -> None:
    """Copy `source` to `target` (atomically, through a temporary file beside it) if its bytes are those `entry` lists."""
    digest = hashlib.sha256()
    with open_nofollow(source) as reader, tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    try:
        if digest.hexdigest() != entry.sha256:
            raise VerificationError([f"{entry.path}: {sha256_mismatch(entry.sha256, digest.hexdigest())} (changed after the dist was verified)"])
        os.chmod(writer.name, 0o644)
        os.replace(writer.name, target)
    except BaseException:
        os.unlink(writer.name)
        raise


def walk(root: Path, descend: Callable[[str], bool]) -> dict[str, str]:
    """Map each path under `root` ("/"-separated) to its kind, entering only the directories `descend` accepts."""
    found = {}
    pending = [""]
    while pending:
        parent = pending.pop()
        with os.scandir(root / parent) as entries:
            for entry in entries:
                path = f"{parent}/{entry.name}" if parent else entry.name
                found[path] = file_kind(entry.stat(follow_symlinks=False).st_mode)
                if found[path] == "directory" and descend(path):
                    pending.append(path)
    return found


def file_kind(mode: int) -> str:
    """Name the kind of file `mode` describes, without following symlinks."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "special file"


def parent_folders(paths: Iterable[str]) -> set[str]:
    """Return every directory that contains one of `paths`."""
    folders: set[str] = set()
    for path in paths:
        # From the innermost folder outwards, until one already found: its own parents were added with it.
        index = path.rfind("/")
        while index != -1 and (folder := path[:index]) not in folders:
            folders.add(folder)
            index = path.rfind("/", 0, index)
    return folders


def regular_files(root: Path) -> list[str]:
    """Return the sorted paths of the regular files under `root`; refuse symlinks, special files and unsafe names."""
    found = walk(root, lambda path: True)
    for path, kind in sorted(found.items()):
        if kind not in ("file", "directory"):
            raise BuildError(f"{display(str(root / path))}: is a {kind}; only regular files and directories can be packaged")
        if problem := path_problem(path):
            raise BuildError(f"{display(str(root / path))}: cannot be packaged: {problem}")
    return sorted(path for path, kind in found.items() if kind == "file")


def path_problem(path: str) -> str | None:
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
    if len(encoded) > MAX_NAME_LENGTH and any(len(part.encode()) > MAX_NAME_LENGTH for part in parts):
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


def display(path: str) -> str:
    """Return `path` as it can be shown on one line."""
    return path if path.isprintable() else repr(path)
