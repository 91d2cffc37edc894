"""The caches under the cache root: what each holds, how much, and removing them without harm to running processes.

Every cache is rebuilt on demand, so removing an entry costs only the time to make it again. Readers check
an entry's presence and then use it whole: an entry is renamed out of their sight before it is deleted, so
none ever sees one half removed; entries a running process holds open or mapped (a Runner's mounted
folders and compiled components) are kept.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wasm_agents.errors import WasmAgentsError
from wasm_agents.paths import cache_root

# Every cache this version writes (the names given to paths.cache_dir), in the order shown, with what it holds.
CACHES = {
    "compiled": "components and the scientific runtime compiled for this host by wasmtime (build, run)",
    "components": "built components, by a hash of all their inputs (build)",
    "bytecode": "bytecode the guest compiled for each component's lazily imported modules (build)",
    "wheels": "downloaded and built wheels, by SHA256 (build)",
    "sdist-builds": "pip's cache while building pure-Python wheels from sdists (build)",
    "stdlib": "the guest's standard library, exported from componentize-py (build)",
    "runtime": "the runtime archives of dists: guest stdlib and sandbox modules, the scientific runtime (build)",
    "unpacked": "verified dist archives, unpacked to be mounted into sandboxes (run)",
    "images": "memory images of scientific agents, copied from verified dists (run)",
}
# An empty folder mounted where an agent has no files: not a cache, and a running Runner needs it.
KEPT = frozenset({"empty"})
UNKNOWN = "not written by this version of wasm-agents"
REMOVING = ".removing-"  # an entry renamed for removal: a clean that was interrupted left it
STALE_S = 24 * 3600  # a writer's temporary entry (".name...") older than this was left by a process that died
DAY_S = 24 * 3600


@dataclass(frozen=True)
class Cache:
    """One cache folder: what it holds, its entries and the bytes they take on disk."""

    name: str
    holds: str
    path: Path
    entries: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


@dataclass(frozen=True)
class Cleaned:
    """What cleaning one cache removed and freed, and the entries kept because a running process uses them."""

    name: str
    path: Path
    removed: int
    freed: int
    in_use: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def caches(root: Path | None = None) -> list[Cache]:
    """Every cache under `root` (default: the cache root): the known ones, made yet or not, then any other folder found there."""
    root = _resolved(root)
    return [_measure(root, name) for name in _names(root)]


def clean(names: Sequence[str] = (), *, older_than_days: float | None = None, root: Path | None = None) -> list[Cleaned]:
    """Remove the entries of the caches `names` (default: all), or only those unused for `older_than_days`.

    Entries a running process holds open or mapped are kept, and so are other processes' temporary entries
    while they may still be written.
    """
    root = _resolved(root)
    known = _names(root)
    for name in names:
        if name not in known:
            raise WasmAgentsError(f"unknown cache '{name}': the caches are {', '.join(known)}")
    folders = {name: _folder(root, name) for name in dict.fromkeys(names or known)}  # all checked before anything is removed
    held = _held_entries(root)
    now = time.time()
    cutoff = None if older_than_days is None else now - older_than_days * DAY_S
    cleaned = []
    for name, folder in folders.items():
        removed = freed = in_use = 0
        for entry in _entries(folder):
            info = entry.stat(follow_symlinks=False)
            if entry.name.startswith(".") and not entry.name.startswith(REMOVING) and now - info.st_mtime < STALE_S:
                continue  # being written by another process
            if cutoff is not None and max(info.st_mtime, info.st_atime) > cutoff:
                continue
            if (name, entry.name) in held:
                in_use += 1
                continue
            size = _usage(Path(entry.path))
            if _remove(Path(entry.path)):
                removed += not entry.name.startswith(".")
                freed += size
        cleaned.append(Cleaned(name, folder, removed, freed, in_use))
    return cleaned


def _resolved(root: Path | None) -> Path:
    """The cache root with its symlinks resolved: the boundary nothing is removed beyond."""
    return (root or cache_root()).resolve()


def _names(root: Path) -> list[str]:
    """The known caches, then the other folders under `root` (left by another version)."""
    found = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []
    return [*CACHES, *(name for name in found if name not in CACHES and name not in KEPT and (root / name).is_dir())]


def _folder(root: Path, name: str) -> Path:
    """The folder of cache `name`, refused unless it is a real folder right under `root`."""
    folder = root / name
    if folder.is_symlink() or (folder.exists() and folder.resolve() != folder):
        raise WasmAgentsError(f"{folder}: a symlink (to {folder.resolve()}): not cleaned; wasm-agents removes only what is inside {root}")
    return folder


def _measure(root: Path, name: str) -> Cache:
    folder = root / name
    holds = CACHES.get(name, UNKNOWN)
    if folder.is_symlink():
        return Cache(name, f"{holds}; a symlink to {folder.resolve()}, not counted", folder, 0, 0)
    entries = list(_entries(folder))
    return Cache(name, holds, folder, sum(not e.name.startswith(".") for e in entries), sum(_usage(Path(e.path)) for e in entries))


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries right under `folder`; none when it does not exist."""
    try:
        with os.scandir(folder) as found:
            return list(found)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _usage(path: Path) -> int:
    """The bytes `path` and everything under it take on disk; symlinks are counted, never followed."""
    total = 0
    pending = [str(path)]
    while pending:
        current = pending.pop()
        try:
            info = os.lstat(current)
        except FileNotFoundError:  # removed meanwhile
            continue
        total += info.st_blocks * 512 if hasattr(info, "st_blocks") else info.st_size
        if stat.S_ISDIR(info.st_mode):
            pending.extend(entry.path for entry in _entries(Path(current)))
    return total


def _remove(entry: Path) -> bool:
    """Rename `entry` out of its readers' sight, then delete it; False when another process removed it first."""
    trash = entry if entry.name.startswith(REMOVING) else entry.with_name(f"{REMOVING}{secrets.token_hex(8)}")
    try:
        os.rename(entry, trash)
    except FileNotFoundError:
        return False
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash)  # descriptor-relative: a symlink inside is removed, never followed
    else:
        trash.unlink()
    return True


def _held_entries(root: Path) -> set[tuple[str, str]]:
    """(cache, entry) of every entry a running process holds open or mapped, as Linux's /proc shows; none elsewhere."""
    prefix = f"{root}{os.sep}"
    held = set()
    for path in _open_and_mapped_paths():
        if path.startswith(prefix):
            parts = path[len(prefix):].split(os.sep)
            if len(parts) >= 2:
                held.add((parts[0], parts[1].removesuffix(" (deleted)")))
    return held


def _open_and_mapped_paths() -> set[str]:
    """The files and folders processes hold open or mapped (those of other users' processes are not readable: not listed)."""
    paths: set[str] = set()
    try:
        pids = [pid for pid in os.listdir("/proc") if pid.isdigit()]
    except FileNotFoundError:
        return paths
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    paths.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
                except OSError:  # closed meanwhile
                    pass
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
                paths.update(fields[5] for line in maps if len(fields := line.rstrip("\n").split(maxsplit=5)) == 6)
        except OSError:  # ended meanwhile, or not ours
            continue
    return paths


def table(found: list[Cache], root: Path) -> Any:
    """A rich table of the caches, folded (never cut) to fit the terminal."""
    from rich.filesize import decimal
    from rich.table import Table

    shown = Table(
        title=f"Caches in {root} ({decimal(sum(cache.bytes for cache in found))})", title_justify="left",
        caption="each is the folder of its name there; remove with: wasm-agents cache clean [NAME...]", caption_justify="left",
    )
    for column, justify in (("cache", "left"), ("entries", "right"), ("size", "right"), ("holds", "left")):
        shown.add_column(column, justify=justify, overflow="fold")
    for cache in found:
        shown.add_row(cache.name, str(cache.entries), decimal(cache.bytes), cache.holds)
    return shown
