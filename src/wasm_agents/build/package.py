"""Write dist/: the code and deps archives with their manifests, the components, and manifest.json over them all."""

import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from wasm_agents.artifacts import (
    CODE_ARTIFACT,
    CODE_MANIFEST,
    COMPONENTS,
    DEPS_ARTIFACT,
    DEPS_MANIFEST,
    FORMAT,
    MANIFEST,
    MANIFEST_SHA256,
    FileEntry,
    Manifest,
    artifact_manifest,
    component_path,
    sha256_file,
    verify_dist,
    write_reproducible_tar,
)
from wasm_agents.errors import BuildError


def package(
    code_dir: Path,
    deps_dir: Path,
    components: dict[str, Path],
    project: dict[str, Any],
    tools: dict[str, str],
    dist: Path,
) -> Manifest:
    """Write dist/ atomically from staged code, staged deps and built components."""
    if os.path.lexists(dist) and (dist.is_symlink() or not dist.is_dir()):
        raise BuildError(f"{dist}: exists and is not a directory; refusing to replace it")
    dist.parent.mkdir(parents=True, exist_ok=True)
    # Siblings of dist, so that the renames below stay on one filesystem and are atomic.
    staging = dist.parent / f".dist-tmp-{secrets.token_hex(8)}"
    aside = dist.parent / f".dist-old-{secrets.token_hex(8)}"
    # mkdir rather than mkdtemp: dist/ gets the umask's permissions, not 0o700.
    staging.mkdir()
    try:
        _write(staging, code_dir, deps_dir, components, project, tools)
        manifest = verify_dist(staging)
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
    components: dict[str, Path],
    project: dict[str, Any],
    tools: dict[str, str],
) -> None:
    """Fill the empty directory `root` with a complete dist."""
    for source, archive, listing in ((code_dir, CODE_ARTIFACT, CODE_MANIFEST), (deps_dir, DEPS_ARTIFACT, DEPS_MANIFEST)):
        write_reproducible_tar(source, root / archive)
        (root / listing).write_bytes(artifact_manifest(root / archive, archive).to_json())
    (root / COMPONENTS).mkdir()
    for name, wasm in components.items():
        if not name or "/" in name:
            raise BuildError(f"{name!r}: not a valid component name")
        # copyfile, not copy2: the dist's permissions and timestamps are its own.
        shutil.copyfile(wasm, root / component_path(name))
    paths = [CODE_ARTIFACT, CODE_MANIFEST, DEPS_ARTIFACT, DEPS_MANIFEST, *map(component_path, components)]
    files = {path: FileEntry(path, (root / path).stat().st_size, sha256_file(root / path)) for path in sorted(paths)}
    data = Manifest(FORMAT, tools, project, files).to_json()
    (root / MANIFEST).write_bytes(data)
    (root / MANIFEST_SHA256).write_bytes(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n".encode())
