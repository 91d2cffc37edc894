"""The documents of a dist: manifest.json and the artifact manifests, parsed strictly and written deterministically."""

import json
import reprlib
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn, Self, TypeVar

import msgspec

from wasm_agents.artifacts.files import parent_folders, path_problem
from wasm_agents.artifacts.layout import FORMAT, MANIFEST, MANIFEST_SHA256, SIGNATURE
from wasm_agents.errors import ProjectError, VerificationError
from wasm_agents.project import Project, Schema, convert, exactly, integer_from

# Components are ~20 MB and archives smaller still: sizes beyond these are refused as absurd.
MAX_FILE_SIZE = 4 << 30
_Size = integer_from(0, MAX_FILE_SIZE)
_Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", description="64 lowercase hex digits")]

_T = TypeVar("_T")


class FileEntry(Schema):
    """One file's path (relative, "/"-separated), size in bytes and hex SHA256."""

    path: str
    size: _Size
    sha256: _Sha256


class _Listed(Schema):
    """A file in manifest.json, under its path."""

    size: _Size
    sha256: _Sha256


class _ManifestJson(Schema):
    """manifest.json as stored: tools, project and files are read on their own, so that problems name the key of a value."""

    format: exactly(FORMAT)
    tools: dict[str, Any]
    project: Any
    files: dict[str, Any]


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
        manifest = _convert(_load(data, source), _ManifestJson, source)
        for name, version in manifest.tools.items():
            _convert(version, str, source, f"tools[{json.dumps(name)}]")
        try:
            project = Project.from_json(manifest.project, source)
        except ProjectError as e:  # a dist whose project cannot run is a broken dist, refused like any other
            raise VerificationError([str(e)]) from None
        files = {}
        for path, value in manifest.files.items():
            where = f"files[{json.dumps(path)}]"
            if _path(path, source, where) in (MANIFEST, MANIFEST_SHA256):
                fail(source, where, f"is covered by {MANIFEST_SHA256}, not listed")
            if path == SIGNATURE:
                fail(source, where, f"is the signature of {MANIFEST}, which cannot list it")
            listed = _convert(value, _Listed, source, where)
            files[path] = FileEntry(path, listed.size, listed.sha256)
        _check_no_file_is_a_directory(files, source, "files")
        return cls(manifest.format, manifest.tools, project, files)

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        files = {path: {"size": entry.size, "sha256": entry.sha256} for path, entry in self.files.items()}
        return dump({"format": self.format, "tools": self.tools, "project": self.project.to_json(), "files": files})


class ArtifactManifest(Schema):
    """code-manifest.json or deps-manifest.json: an archive's name, size, SHA256 and members sorted by path."""

    artifact: str
    size: _Size
    sha256: _Sha256
    files: tuple[FileEntry, ...]

    @classmethod
    def from_json(cls, data: bytes, source: str = "artifact manifest") -> Self:
        """Parse and strictly validate an artifact manifest; `source` names the file in problems."""
        listing = _convert(_load(data, source), cls, source)
        for index, entry in enumerate(listing.files):
            where = f"files[{index}].path"
            _path(entry.path, source, where)
            if index and entry.path <= listing.files[index - 1].path:
                fail(source, where, "duplicate" if entry.path == listing.files[index - 1].path else "not sorted by path")
        _check_no_file_is_a_directory({entry.path: entry for entry in listing.files}, source, "files")
        return listing

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        return dump(msgspec.to_builtins(self))


def _check_no_file_is_a_directory(files: dict[str, FileEntry], source: str, where: str) -> None:
    """Refuse a listing where one path is a directory of another: no archive or folder can hold both."""
    for path in sorted(parent_folders(files).intersection(files)):
        fail(source, f"{where}[{json.dumps(path)}]", "is both a file and a directory of other files")


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


def _convert(data: object, schema: type[_T], source: str, key: str = "") -> _T:
    """Return `data` as a `schema`, or raise the VerificationError naming the key and the offending value."""
    return convert(data, schema, source, key, lambda problem: VerificationError([problem]))


def _path(path: str, source: str, where: str) -> str:
    """Return `path` if it is a safe relative path."""
    if problem := path_problem(path):
        fail(source, where, f"{problem}: {reprlib.repr(path)}")
    return path


def fail(source: str, where: str, message: str) -> NoReturn:
    """Raise the VerificationError for one invalid manifest value."""
    raise VerificationError([f"{source}: {where}: {message}" if where else f"{source}: {message}"])


def dump(obj: object) -> bytes:
    """Serialise `obj` deterministically."""
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()
