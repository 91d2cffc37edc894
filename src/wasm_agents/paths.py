"""Where wasm-agents keeps its caches (XDG on Linux), and how it writes files there and elsewhere."""

import os
import shutil
import tempfile
from pathlib import Path

import platformdirs


def cache_root() -> Path:
    """Return the per-user folder that holds every cache (on Linux $XDG_CACHE_HOME/wasm-agents); it may not exist yet."""
    return Path(platformdirs.user_cache_dir("wasm-agents"))


def cache_dir(kind: str) -> Path:
    """Return the per-user cache folder for `kind` (e.g. "wheels", "components", "compiled")."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0644) through a temporary file in the same folder and os.replace.

    Readers, and other processes or threads writing the same path, see the old file or the new one,
    never a part of either.
    """
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        file.write(data)
    try:
        os.chmod(file.name, 0o644)  # NamedTemporaryFile creates 0600; these are ordinary files
        os.replace(file.name, path)
    except OSError:
        os.unlink(file.name)
        raise


def publish_folder(staged: Path, folder: Path) -> None:
    """Rename the finished folder `staged` to `folder`; when another process published it first, drop `staged`."""
    try:
        os.rename(staged, folder)
    except OSError:
        shutil.rmtree(staged, ignore_errors=True)
        if not folder.is_dir():
            raise
