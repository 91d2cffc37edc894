"""Scratch folders: one private writable folder per fresh instance, its quota, and its removal, whatever a guest left.

Every scratch folder of a process lives under one folder of that process, removed when the process ends
(the command line calls `remove_process_scratch` on its way out); one left by a process that was killed
is removed by the next process that makes scratch folders.

WASI gives no hook on a guest's writes, so a quota is kept by watching: every POLL_S the folders of running
invocations are measured (apparent sizes, so sparse files count whole; a folder or file counts a block at
least; files the guest deleted but still holds open count too). Past its quota, a folder is emptied and
every file of it this process holds open is truncated, again at each poll until the invocation ends, and
the invocation fails. A guest can go past its quota by what it writes within one poll.
"""

import atexit
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from contextlib import suppress
from functools import cache
from pathlib import Path

_PREFIX = "wasm-agents-scratch-"
_PROCESS_FOLDER = re.compile(rf"{_PREFIX}(\d+)-\w+")
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def new_scratch() -> Path:
    """Make an empty scratch folder for one instance."""
    return Path(tempfile.mkdtemp(dir=_process_folder()))


POLL_S = 0.01
ENTRY_BYTES = 4096  # what a file or folder costs at least: a block of the host's disk
_OWN_FDS = Path("/proc/self/fd")  # Linux: the files this process (so every guest of it) holds open


class Quota:
    """One running invocation's scratch folder under watch: its limit in bytes, and whether it went past it."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = str(folder)
        self.limit = limit
        self.exceeded = False

    def keep(self, open_files: list[tuple[str, str]]) -> None:
        """Measure the folder; past the limit, mark it exceeded and give its space back (and so at every later call)."""
        if self.exceeded or usage(self.folder, self.limit, open_files) > self.limit:
            self.exceeded = True
            _empty(self.folder, open_files)


def watch(folder: Path, limit: int) -> Quota:
    """Keep the scratch folder `folder` within `limit` bytes until `unwatch`."""
    quota = Quota(folder, limit)
    with _watching.lock:
        _watching.quotas.add(quota)
        if _watching.thread is None:
            _watching.thread = threading.Thread(target=_keep_quotas, name="wasm-agents-scratch-quota", daemon=True)
            _watching.thread.start()
    return quota


def unwatch(quota: Quota) -> None:
    """Stop watching `quota`'s folder, measured a last time: its invocation has ended."""
    with _watching.lock:
        _watching.quotas.discard(quota)
    quota.keep(_open_files())


def usage(folder: str, stop_above: int, open_files: list[tuple[str, str]] | None = None) -> int:
    """Bytes the scratch folder `folder` holds, counted up to a little past `stop_above` (see the module's docstring)."""
    prefix = folder + "/"
    total = sum(_size_of(link) for link, target in (open_files or []) if target.startswith(prefix) and target.endswith(" (deleted)"))
    try:
        current = os.open(folder, _DIRECTORY)
    except OSError:
        return total
    todo: list[list[str]] = []  # per folder entered: its subfolders not entered yet
    try:
        subfolders, size = _scan(current)
        total += size
        todo.append(subfolders)
        while todo and total <= stop_above:
            if todo[-1]:
                try:
                    current = _enter(current, todo[-1].pop())
                except OSError:
                    continue
                subfolders, size = _scan(current)
                total += size
                todo.append(subfolders)
            else:
                todo.pop()
                if todo:
                    current = _leave(current)
    except OSError:
        pass
    finally:
        os.close(current)
    return total


def remove_process_scratch() -> None:
    """Remove every scratch folder of this process, those of guests still blocked in a WASI call included."""
    if _made_process_folder.cache_info().currsize:
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
                folder = _enter(folder, child)
            except OSError:
                stuck.add(_identity(child, folder))
                continue
            names.append(child)
            continue
        if not names:
            os.close(folder)
            with suppress(OSError):
                os.rmdir(path)
            return
        own = os.fstat(folder)
        try:
            folder = _leave(folder)
        except OSError:
            os.close(folder)
            return
        try:
            os.rmdir(names.pop(), dir_fd=folder)
        except OSError:
            stuck.add((own.st_dev, own.st_ino))


def _enter(folder: int, name: str) -> int:
    """Open the subfolder `name` of the open folder `folder` (never through a symlink) and close `folder`."""
    inner = os.open(name, _DIRECTORY, dir_fd=folder)
    os.close(folder)
    return inner


def _leave(folder: int) -> int:
    """Open the parent of the open folder `folder` and close `folder`: one descriptor open at a time, however deep."""
    parent = os.open("..", _DIRECTORY, dir_fd=folder)
    os.close(folder)
    return parent


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


class _Watching:
    def __init__(self) -> None:
        self.quotas: set[Quota] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None


_watching = _Watching()


def _keep_quotas() -> None:
    while True:
        time.sleep(POLL_S)
        with _watching.lock:
            quotas = list(_watching.quotas)
        if not quotas:
            continue
        open_files = _open_files()
        for quota in quotas:
            quota.keep(open_files)


def _empty(folder: str, open_files: list[tuple[str, str]]) -> None:
    """Remove what `folder` holds, and truncate every file of it still open: its disk space is given back now."""
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                remove_tree(Path(entry.path))
            else:
                with suppress(OSError):
                    os.unlink(entry.path)
    prefix = folder + "/"
    for link, target in open_files:
        if not target.startswith(prefix):
            continue
        try:
            # A descriptor of our own to the same file: it cannot turn into another file between the check and the truncation.
            reopened = os.open(link, os.O_WRONLY)
        except OSError:
            continue  # a folder, or closed meanwhile
        try:
            if os.readlink(f"{_OWN_FDS}/{reopened}").startswith(prefix):
                os.ftruncate(reopened, 0)
        except OSError:
            pass
        finally:
            os.close(reopened)


def _open_files() -> list[tuple[str, str]]:
    """Each file this process holds open, as its /proc link and the path it names; none where /proc has no fd folder."""
    files = []
    with suppress(OSError):
        for name in os.listdir(_OWN_FDS):
            with suppress(OSError):
                files.append((f"{_OWN_FDS}/{name}", os.readlink(f"{_OWN_FDS}/{name}")))
    return files


def _size_of(link: str) -> int:
    try:
        st = os.stat(link)
    except OSError:
        return 0
    return max(st.st_size, st.st_blocks * 512, ENTRY_BYTES)


def _scan(folder: int) -> tuple[list[str], int]:
    """The subfolders of the open folder `folder`, and the bytes of everything else in it."""
    subfolders, size = [], 0
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            size += max(st.st_size, st.st_blocks * 512, ENTRY_BYTES) if stat.S_ISREG(st.st_mode) else ENTRY_BYTES
            if stat.S_ISDIR(st.st_mode):
                subfolders.append(entry.name)
    return subfolders, size


_making = threading.Lock()  # two threads making the process's first scratch folders at once must make one process folder


def _process_folder() -> Path:
    """The folder of this process's scratch folders, made on first use after removing those of dead processes."""
    with _making:
        return _made_process_folder()


@cache
def _made_process_folder() -> Path:
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
