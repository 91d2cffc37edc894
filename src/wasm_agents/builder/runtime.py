"""The guest runtime every dist carries: the guest interpreter's standard library as files, and the sandbox's guest modules.

A component holds only what its snapshot imported. Everything else an agent may import later (the rest
of the stdlib, codecs, lazily loaded submodules) is mounted read-only into each fresh instance from
this archive, which is verified like every other byte of the dist.
"""

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from wasm_agents.artifacts.archive import artifact_manifest, write_reproducible_tar
from wasm_agents.artifacts.files import sha256_file
from wasm_agents.artifacts.layout import RUNTIME_ARTIFACT, RUNTIME_SANDBOX, RUNTIME_STDLIB
from wasm_agents.artifacts.model import ArtifactManifest
from wasm_agents.builder.toolchain import run_componentize_py
from wasm_agents.errors import BuildError
from wasm_agents.paths import cache_dir, publish_folder
from wasm_agents.sandbox import GUEST_DIR, STDLIB_MOUNT

_exporting = threading.Lock()

# How the runtime is made, part of its cache key: edit it with the method, so the cache never serves what an older method made.
METHOD = "the guest's stdlib exported from componentize-py, with unchecked-hash bytecode compiled by the guest"

# Runs inside componentize-py's own interpreter while it pre-initialises (its stdlib mounted at /python, the
# output folder at /1): copies that stdlib out and compiles it with the guest's own compiler, so the bytecode
# matches the guest exactly. Unchecked-hash .pyc files stay valid whatever mtimes the archive gives the sources.
EXPORTER_MODULE = "wasm_agents_export_stdlib"
EXPORTER = f"""
import compileall, py_compile, shutil
shutil.copytree({STDLIB_MOUNT!r}, "/1/python", ignore=shutil.ignore_patterns("__pycache__"))
if not compileall.compile_dir("/1/python", ddir={STDLIB_MOUNT!r}, quiet=1, force=True, workers=1,
                              invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH):
    raise SystemExit("compileall failed")

import wit_world

class WitWorld(wit_world.WitWorld):
    def run(self, input):
        return input
"""


def runtime_artifact() -> tuple[Path, ArtifactManifest]:
    """Return the runtime archive and its manifest, made once per componentize-py version and guest modules."""
    key = _digest(f"{METHOD}; componentize-py {version('componentize-py')}", tree_lines(GUEST_DIR))

    def fill(tree: Path) -> None:
        shutil.copytree(guest_stdlib(), tree / RUNTIME_STDLIB)
        shutil.copytree(GUEST_DIR, tree / RUNTIME_SANDBOX, ignore=shutil.ignore_patterns("__pycache__"))

    return cached_archive(cache_dir("runtime") / key, RUNTIME_ARTIFACT, fill)


def cached_archive(folder: Path, name: str, fill: Callable[[Path], None]) -> tuple[Path, ArtifactManifest]:
    """Return the archive `name` in the cache `folder` and its manifest, made first (from the tree `fill` writes) if absent."""
    archive, listing = folder / name, folder / "manifest.json"
    if not listing.is_file():
        with tempfile.TemporaryDirectory(prefix=f".{folder.name}-", dir=folder.parent) as work:
            tree, staged = Path(work) / "tree", Path(work) / "out"
            tree.mkdir()
            staged.mkdir()
            fill(tree)
            write_reproducible_tar(tree, staged / name)
            (staged / "manifest.json").write_bytes(artifact_manifest(staged / name, name).to_json())
            publish_folder(staged, folder)
    return archive, ArtifactManifest.from_json(listing.read_bytes(), str(listing))


def guest_stdlib() -> Path:
    """Return the guest's stdlib folder with compiled bytecode, exported once per componentize-py version (~20 s)."""
    folder = cache_dir("stdlib") / _digest(f"{METHOD}; componentize-py {version('componentize-py')}", [])
    with _exporting:  # the build's threads all need it: one export, not one each
        if not (folder / "python").is_dir():
            _export_stdlib(folder)
    return folder / "python"


def _export_stdlib(folder: Path) -> None:
    """Export the stdlib of componentize-py's interpreter into `folder`/python."""
    with tempfile.TemporaryDirectory(prefix=".stdlib-", dir=folder.parent) as work:
        work_path = Path(work)
        exporter, out = work_path / "exporter", work_path / "out"
        exporter.mkdir()
        out.mkdir()
        (exporter / f"{EXPORTER_MODULE}.py").write_text(EXPORTER)
        process = run_componentize_py(EXPORTER_MODULE, [exporter, out], work_path / "unused.wasm", work_path)
        if process.returncode != 0 or not (out / "python" / "os.py").is_file():
            tail = process.stderr.strip().splitlines()[-1:] or ["no output"]
            raise BuildError(f"exporting the guest's standard library from componentize-py failed: {tail[0]}")
        publish_folder(out, folder)


def tree_lines(root: Path) -> list[str]:
    """One line per file under `root` (bytecode caches left out): its relative path and SHA256, sorted by path."""
    return [
        f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]


def _digest(head: str, lines: list[str]) -> str:
    return hashlib.sha256("\n".join([head, *lines]).encode()).hexdigest()
