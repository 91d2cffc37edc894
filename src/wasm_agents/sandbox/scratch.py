"""Scratch folders: one private writable folder per fresh instance, and their removal, whatever a guest left in them.

Every scratch folder of a process lives under one folder of that process, removed when the process ends
(the command line calls `remove_process_scratch` on its way out); one left by a process that was killed
is removed by the next process that makes scratch folders.
"""

import atexit
import os
import re
import shutil
import tempfile
from contextlib import suppress
from functools import cache
from pathlib import Path

_PREFIX = "wasm-agents-scratch-"
_PROCESS_FOLDER = re.compile(rf"{_PREFIX}(\d+)-\w+")
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def new_scratch() -> Path:
    """Make an empty scratch folder for one instance."""
    return Path(tempfile.mkdtemp(dir=_process_folder()))


def remove_process_scratch() -> None:
    """Remove every scratch folder of this process, those of guests still blocked in a WASI call included."""
    if _process_folder.cache_info().currsize:
        remove_tree(_process_folder())


def remove_tree(path: Path) -> None:
    """Remove the folder `path` and all it holds, never following a symlink; what cannot be removed stays.

    Iterative, with one open folder at a time and names relative to it: a guest's 100 000-deep tree of
    folders, whose paths are far longer than the host's PATH_MAX, goes like any other.
    """
    if os.scandir not in os.supports_fd:  # no folder descriptors (Windows): the standard library's way
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        folder = os.open(path, _DIRECTORY)
    except OSError:
        return
    names: list[str] = []  # from `path` down to `folder`
    stuck: set[tuple[int, int]] = set()  # folders that could not be removed, not entered again
    while True:
        child = _first_subfolder_emptying(folder, stuck)
        if child is not None:
            try:
                inner = os.open(child, _DIRECTORY, dir_fd=folder)
            except OSError:
                stuck.add(_identity(child, folder))
                continue
            os.close(folder)
            folder = inner
            names.append(child)
            continue
        if not names:
            os.close(folder)
            with suppress(OSError):
                os.rmdir(path)
            return
        own = os.fstat(folder)
        try:
            parent = os.open("..", _DIRECTORY, dir_fd=folder)
        except OSError:
            os.close(folder)
            return
        os.close(folder)
        folder = parent
        try:
            os.rmdir(names.pop(), dir_fd=folder)
        except OSError:
            stuck.add((own.st_dev, own.st_ino))


def _first_subfolder_emptying(folder: int, stuck: set[tuple[int, int]]) -> str | None:
    """Unlink everything in `folder` but folders; return the name of a folder in it not yet known to be stuck."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if _identity(entry.name, folder) not in stuck:
                        return entry.name
                else:
                    with suppress(OSError):
                        os.unlink(entry.name, dir_fd=folder)
    except OSError:
        pass
    return None


def _identity(name: str, folder: int) -> tuple[int, int]:
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return (-1, -1)
    return st.st_dev, st.st_ino


@cache
def _process_folder() -> Path:
    """The folder of this process's scratch folders, made on first use after removing those of dead processes."""
    parent = Path(tempfile.gettempdir())
    for stale in parent.glob(f"{_PREFIX}*"):
        if (match := _PROCESS_FOLDER.fullmatch(stale.name)) and not _alive(int(match[1])):
            remove_tree(stale)
    folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=parent))
    atexit.register(remove_tree, folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    return True
