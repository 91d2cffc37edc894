"""The documents of a dist: manifest.json and the artifact manifests, parsed strictly and written deterministically."""

import json
import re
import reprlib
from dataclasses import dataclass, field
from typing import Any, NoReturn, Self

from wasm_agents.artifacts.files import parent_folders, path_problem
from wasm_agents.artifacts.layout import FORMAT, MANIFEST, MANIFEST_SHA256, SIGNATURE
from wasm_agents.errors import ProjectError, VerificationError
from wasm_agents.project import Project

# Components are ~20 MB and archives smaller still: sizes beyond these are refused as absurd.
MAX_FILE_SIZE = 4 << 30
_SHA256 = re.compile("[0-9a-f]{64}")


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
    project: Project
    files: dict[str, FileEntry]
    signed_by: str | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, data: bytes, source: str = MANIFEST) -> Self:
        """Parse and strictly validate manifest.json; `source` names the file in problems."""
        obj = _object(_load(data, source), {"format", "tools", "project", "files"}, source, "")
        if obj["format"] != FORMAT:
            fail(source, "format", f"expected {FORMAT!r}, got {reprlib.repr(obj['format'])}")
        tools = _object(obj["tools"], None, source, "tools")
        for name, value in tools.items():
            _string(value, source, f"tools[{json.dumps(name)}]")
        try:
            project = Project.from_json(obj["project"], f"{source}: project")
        except ProjectError as e:  # a dist whose project cannot run is a broken dist, refused like any other
            raise VerificationError([str(e)]) from None
        files = {}
        for path, value in _object(obj["files"], None, source, "files").items():
            where = f"files[{json.dumps(path)}]"
            if _path(path, source, where) in (MANIFEST, MANIFEST_SHA256):
                fail(source, where, f"is covered by {MANIFEST_SHA256}, not listed")
            if path == SIGNATURE:
                fail(source, where, f"is the signature of {MANIFEST}, which cannot list it")
            files[path] = _entry(_object(value, {"size", "sha256"}, source, where), path, source, where)
        _check_no_file_is_a_directory(files, source, "files")
        return cls(obj["format"], tools, project, files)

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        files = {path: {"size": entry.size, "sha256": entry.sha256} for path, entry in self.files.items()}
        return dump({"format": self.format, "tools": self.tools, "project": self.project.to_json(), "files": files})


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
            fail(source, "files", f"expected an array, got {_json_type(obj['files'])}")
        files = []
        for index, value in enumerate(obj["files"]):
            where = f"files[{index}]"
            item = _object(value, {"path", "size", "sha256"}, source, where)
            path = _path(item["path"], source, f"{where}.path")
            if files and path <= files[-1].path:
                fail(source, f"{where}.path", "duplicate" if path == files[-1].path else "not sorted by path")
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
        return dump({"artifact": self.artifact, "size": self.size, "sha256": self.sha256, "files": files})


def _check_no_file_is_a_directory(files: dict[str, FileEntry], source: str, where: str) -> None:
    """Refuse a listing where one path is a directory of another: no archive or folder can hold both."""
    for path in sorted(parent_folders(files).intersection(files)):
        fail(source, f"{where}[{json.dumps(path)}]", "is both a file and a directory of other files")


def _entry(item: dict[str, Any], path: str, source: str, where: str) -> FileEntry:
    """Return the entry of `path` after validating the size and sha256 of its object."""
    return FileEntry(path, _size(item["size"], source, f"{where}.size"), _sha256(item["sha256"], source, f"{where}.sha256"))


def _load(data: bytes, source: str) -> object:
    """Parse strict JSON: UTF-8, no duplicate keys, no NaN or Infinity."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        fail(source, "", f"invalid JSON: {e}")


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
        fail(source, where, f"expected an object, got {_json_type(value)}")
    if keys is not None:
        prefix = f"{where}." if where else ""
        if missing := sorted(keys - value.keys()):
            fail(source, prefix + missing[0], "missing")
        if unknown := sorted(value.keys() - keys):
            fail(source, prefix + unknown[0], "unknown key")
    return value


def _string(value: object, source: str, where: str) -> str:
    """Return `value` if it is a string."""
    if not isinstance(value, str):
        fail(source, where, f"expected a string, got {_json_type(value)}")
    return value


def _size(value: object, source: str, where: str) -> int:
    """Return `value` if it is a plausible size in bytes."""
    if not isinstance(value, int) or isinstance(value, bool):
        fail(source, where, f"expected an integer, got {_json_type(value)}")
    if not 0 <= value <= MAX_FILE_SIZE:
        fail(source, where, f"{reprlib.repr(value)} is outside 0..{MAX_FILE_SIZE}")
    return value


def _sha256(value: object, source: str, where: str) -> str:
    """Return `value` if it is a lowercase hex SHA256."""
    if not _SHA256.fullmatch(_string(value, source, where)):
        fail(source, where, f"expected 64 lowercase hex digits, got {reprlib.repr(value)}")
    return value


def _path(value: object, source: str, where: str) -> str:
    """Return `value` if it is a safe relative path."""
    if problem := path_problem(_string(value, source, where)):
        fail(source, where, f"{problem}: {reprlib.repr(value)}")
    return value


def _json_type(value: object) -> str:
    """Name the JSON type of a parsed value."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    return names.get(type(value), "null")


def fail(source: str, where: str, message: str) -> NoReturn:
    """Raise the VerificationError for one invalid manifest value."""
    raise VerificationError([f"{source}: {where}: {message}" if where else f"{source}: {message}"])


def dump(obj: object) -> bytes:
    """Serialise `obj` deterministically."""
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()
