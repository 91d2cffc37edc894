"""Where wasm-agents keeps its caches (XDG on Linux)."""

from pathlib import Path

import platformdirs


def cache_dir(kind: str) -> Path:
    """Return the per-user cache folder for `kind` (e.g. "wheels", "components", "compiled")."""
    path = Path(platformdirs.user_cache_dir("wasm-agents")) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
