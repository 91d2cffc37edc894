"""Write dist/: the code and deps archives with their manifests, the components, the provenance, manifest.json
over them all, and its signature."""

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wasm_agents.artifacts.archive import artifact_manifest, write_reproducible_tar
from wasm_agents.artifacts.files import sha256_file
from wasm_agents.artifacts.layout import (
    CODE_ARTIFACT,
    CODE_MANIFEST,
    COMPONENTS,
    DEPS_ARTIFACT,
    DEPS_MANIFEST,
    FORMAT,
    MANIFEST,
    MANIFEST_SHA256,
    PROVENANCE,
    IMAGES,
    RUNTIME_ARTIFACT,
    RUNTIME_MANIFEST,
    SCIENTIFIC_ARTIFACT,
    SCIENTIFIC_MANIFEST,
    SIGNATURE,
    component_path,
    image_path,
)
from wasm_agents.artifacts.model import ArtifactManifest, FileEntry, Manifest
from wasm_agents.artifacts.verify import verify_dist
from wasm_agents.builder.vendor import LockedWheel
from wasm_agents.artifacts.signing import TrustPolicy, sign
from wasm_agents.errors import BuildError
from wasm_agents.project import Project

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:wasm-agents:build:v1"
BUILDER_ID = "urn:wasm-agents:builder"


@dataclass(frozen=True)
class BuildInputs:
    """What provenance.json records beyond the dist's own files: the command, its parameters and every agent's lock."""

    command: list[str] | None
    parameters: dict[str, Any]
    locks: dict[str, list[LockedWheel]]


@dataclass(frozen=True)
class Scientific:
    """What a dist with agents of the scientific runtime holds besides: the runtime's archive, and each agent's memory image."""

    runtime: tuple[Path, ArtifactManifest]
    images: dict[str, Path]


def package(
    code_dir: Path,
    deps_dir: Path,
    runtime: tuple[Path, ArtifactManifest],
    components: dict[str, Path],
    project: Project,
    tools: dict[str, str],
    dist: Path,
    *,
    scientific: Scientific | None = None,
    inputs: BuildInputs | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> Manifest:
    """Write dist/ atomically from staged code, staged deps, the guest runtime archive and built components.

    With `scientific`, the dist holds the scientific runtime's archive and its agents' memory images; with
    `inputs`, provenance.json; with `signing_key`, manifest.json.sig.
    """
    if os.path.lexists(dist) and (dist.is_symlink() or not dist.is_dir()):
        raise BuildError(f"{dist}: exists and is not a directory; refusing to replace it")
    dist.parent.mkdir(parents=True, exist_ok=True)
    # Siblings of dist, so that the renames below stay on one filesystem and are atomic.
    staging = dist.parent / f".dist-tmp-{secrets.token_hex(8)}"
    aside = dist.parent / f".dist-old-{secrets.token_hex(8)}"
    # mkdir rather than mkdtemp: dist/ gets the umask's permissions, not 0o700.
    staging.mkdir()
    try:
        _write(staging, code_dir, deps_dir, runtime, components, project, tools, scientific, inputs, signing_key)
        # Each listing was read off its own archive: the members need no second reading.
        manifest = verify_dist(staging, TrustPolicy.of([signing_key.public_key()]) if signing_key else None, members=False).manifest
        if os.path.lexists(dist):
            os.rename(dist, aside)
        os.rename(staging, dist)
    except BaseException:
        if os.path.lexists(aside):
            os.rename(aside, dist)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if os.path.lexists(aside):
        shutil.rmtree(aside)
    return manifest


def _write(
    root: Path,
    code_dir: Path,
    deps_dir: Path,
    runtime: tuple[Path, ArtifactManifest],
    components: dict[str, Path],
    project: Project,
    tools: dict[str, str],
    scientific: Scientific | None,
    inputs: BuildInputs | None,
    signing_key: Ed25519PrivateKey | None,
) -> None:
    """Fill the empty directory `root` with a complete dist."""
    listings = {}
    for source, archive, listing in ((code_dir, CODE_ARTIFACT, CODE_MANIFEST), (deps_dir, DEPS_ARTIFACT, DEPS_MANIFEST)):
        write_reproducible_tar(source, root / archive)
        listings[listing] = artifact_manifest(root / archive, archive)
        (root / listing).write_bytes(listings[listing].to_json())
    runtime_archive, runtime_listing = runtime
    shutil.copyfile(runtime_archive, root / RUNTIME_ARTIFACT)
    (root / RUNTIME_MANIFEST).write_bytes(runtime_listing.to_json())
    if components:
        (root / COMPONENTS).mkdir()
    for name, wasm in components.items():
        if not name or "/" in name:
            raise BuildError(f"{name!r}: not a valid component name")
        # copyfile, not copy2: the dist's permissions and timestamps are its own.
        shutil.copyfile(wasm, root / component_path(name))
    paths = [CODE_ARTIFACT, CODE_MANIFEST, DEPS_ARTIFACT, DEPS_MANIFEST, RUNTIME_ARTIFACT, RUNTIME_MANIFEST, *map(component_path, components)]
    if scientific is not None:
        archive, listing = scientific.runtime
        shutil.copyfile(archive, root / SCIENTIFIC_ARTIFACT)
        (root / SCIENTIFIC_MANIFEST).write_bytes(listing.to_json())
        (root / IMAGES).mkdir()
        for name, image in scientific.images.items():
            shutil.copyfile(image, root / image_path(name))
        paths += [SCIENTIFIC_ARTIFACT, SCIENTIFIC_MANIFEST, *map(image_path, scientific.images)]
    files = {path: _file_entry(root, path) for path in sorted(paths)}
    if inputs is not None:
        (root / PROVENANCE).write_bytes(_dump(_provenance(inputs, listings[CODE_MANIFEST], files, tools)))
        files = {path: _file_entry(root, path) for path in sorted([*paths, PROVENANCE])}
    data = Manifest(FORMAT, tools, project, files).to_json()
    (root / MANIFEST).write_bytes(data)
    (root / MANIFEST_SHA256).write_bytes(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode())
    if signing_key is not None:
        (root / SIGNATURE).write_bytes(sign(data, signing_key).to_json())


def _file_entry(root: Path, path: str) -> FileEntry:
    """Describe the file `path` of the dist at `root`."""
    return FileEntry(path, (root / path).stat().st_size, sha256_file(root / path))


def _provenance(inputs: BuildInputs, code: ArtifactManifest, outputs: dict[str, FileEntry], tools: dict[str, str]) -> dict[str, Any]:
    """Return the in-toto statement with a SLSA provenance predicate: the build's inputs, builder and outputs."""
    sources = [{"name": entry.path, "digest": {"sha256": entry.sha256}} for entry in code.files]
    wheels = [
        {
            "name": wheel.filename,
            "uri": f"pkg:pypi/{wheel.name}@{wheel.version}",
            "digest": {"sha256": wheel.sha256},
            "annotations": {"agent": agent},
        }
        for agent, locked in sorted(inputs.locks.items())
        for wheel in locked
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": entry.path, "digest": {"sha256": entry.sha256}} for entry in outputs.values()],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"command": inputs.command, **inputs.parameters},
                "resolvedDependencies": sources + wheels,
            },
            "runDetails": {"builder": {"id": BUILDER_ID, "version": tools}},
        },
    }


def _dump(obj: object) -> bytes:
    """Serialise `obj` deterministically."""
    return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()
