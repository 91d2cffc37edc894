"""The version of the wasmtime package this process imports, part of the compiled-code cache key."""

from functools import cache
from pathlib import Path

import wasmtime


@cache
def wasmtime_version() -> str:
    """Return the imported wasmtime's version: the string `importlib.metadata.version("wasmtime")` gives."""
    # Read from the metadata its installer wrote beside the package: importlib.metadata loads email, zipfile and csv,
    # ~20 ms of every `wasm-agents run`. Anything but exactly one such folder is left to importlib.metadata.
    found = [
        version for folder in Path(wasmtime.__file__).parent.parent.glob("wasmtime-*.dist-info")
        if (version := _metadata_version(folder / "METADATA")) is not None
    ]
    if len(found) == 1:
        return found[0]
    from importlib.metadata import version

    return version("wasmtime")


def _metadata_version(path: Path) -> str | None:
    """Return the Version of a core-metadata file naming the wasmtime distribution, else None."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    headers: dict[str, str] = {}
    for line in lines:
        if not line:  # the headers end at the first empty line; the description follows
            break
        key, _, value = line.partition(":")
        headers.setdefault(key.strip().lower(), value.strip())
    if headers.get("name", "").lower() != "wasmtime":
        return None
    return headers.get("version")
