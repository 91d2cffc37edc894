"""The compiled-code cache: compile each verified component (or core module) once per host, then deserialize it in ms.

Only files this host wrote are ever deserialized (deserializing untrusted bytes is unsafe); the
key binds the code's SHA256, the wasmtime version and the engine configuration.
"""

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TypeVar

from wasmtime import Engine, Module, WasmtimeError
from wasmtime.component import Component

from wasm_agents.errors import VerificationError
from wasm_agents.paths import cache_dir, write_atomically
from wasm_agents.sandbox.engine import config_fingerprint
from wasm_agents.sandbox.wasmtime_version import wasmtime_version

try:
    import fcntl
except ImportError:  # Windows: no lock, so processes may compile the same code at once (each writes it atomically)
    fcntl = None

# Wraps a compile, the slow path (~10 s a component): what a caller uses to show that it happens.
Compiling = Callable[[], AbstractContextManager[object]]


Compiled = TypeVar("Compiled", Component, Module)


def load_component(engine: Engine, path: Path, sha256: str, fuel: bool, *, compiling: Compiling = nullcontext) -> Component:
    """Return the component at `path`, which must hash to `sha256`, compiled for `engine`; a compile runs within `compiling()`."""
    return load_compiled(Component, engine, path, sha256, fuel, compiling=compiling)


def load_compiled(kind: type[Compiled], engine: Engine, path: Path, sha256: str, fuel: bool, *, compiling: Compiling = nullcontext) -> Compiled:
    """Return the `kind` (Component or Module) at `path`, which must hash to `sha256`, compiled for `engine`."""
    compiled = compiled_path(sha256, fuel)
    if (code := _deserialized(kind, engine, compiled)) is not None:
        return code
    # One compile per host: processes that need the same code (a batch's workers, runs started together) wait for the
    # first instead of each compiling it (seconds for a component, minutes and GBs for the scientific runtime).
    with open(compiled.with_name(f".{compiled.name}.lock"), "wb") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if (code := _deserialized(kind, engine, compiled)) is not None:
            return code
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:  # the file changed after verification: compile only what was verified
            raise VerificationError([f"{path.name}: sha256 mismatch: expected {sha256}, got {actual}"])
        with compiling():
            code = kind(engine, data)
            del data  # a runtime module is ~100 MB: not held while it serializes
            write_atomically(compiled, code.serialize())
    return code


def _deserialized(kind: type[Compiled], engine: Engine, compiled: Path) -> Compiled | None:
    """Return the code this host compiled into `compiled`, or None when there is none (yet, or any more)."""
    if not compiled.is_file():
        return None
    try:
        return kind.deserialize_file(engine, str(compiled))
    except WasmtimeError:
        if compiled.is_file():
            raise
        return None  # `wasm-agents cache clean` removed it meanwhile: compile it again


def compiled_path(sha256: str, fuel: bool) -> Path:
    """Return where the code hashing to `sha256` is cached, compiled for this host and engine configuration."""
    return cache_dir("compiled") / f"{cache_key(sha256, fuel)}.cwasm"


def cache_key(sha256: str, fuel: bool) -> str:
    """Return the cache file's key for a code hash and engine configuration."""
    material = f"{sha256};wasmtime={wasmtime_version()};{config_fingerprint(fuel)}"
    return hashlib.sha256(material.encode()).hexdigest()
