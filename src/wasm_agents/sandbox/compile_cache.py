"""The compiled-component cache: compile each verified component once per host, then deserialize it in ms.

Only files this host wrote are ever deserialized (deserializing untrusted bytes is unsafe); the
key binds the component's SHA256, the wasmtime version and the engine configuration.
"""

import hashlib
from importlib.metadata import version
from pathlib import Path

from wasmtime import Engine
from wasmtime.component import Component

from wasm_agents.errors import VerificationError
from wasm_agents.paths import cache_dir, write_atomically
from wasm_agents.sandbox.engine import config_fingerprint


def load_component(engine: Engine, path: Path, sha256: str, fuel: bool) -> Component:
    """Return the component at `path`, which must hash to `sha256`, compiled for `engine`."""
    compiled = cache_dir("compiled") / f"{cache_key(sha256, fuel)}.cwasm"
    if compiled.is_file():
        return Component.deserialize_file(engine, str(compiled))
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:  # the file changed after verification: compile only what was verified
        raise VerificationError([f"{path.name}: sha256 mismatch: expected {sha256}, got {actual}"])
    component = Component(engine, data)
    write_atomically(compiled, component.serialize())
    return component


def cache_key(sha256: str, fuel: bool) -> str:
    """Return the cache file's key for a component hash and engine configuration."""
    material = f"{sha256};wasmtime={version('wasmtime')};{config_fingerprint(fuel)}"
    return hashlib.sha256(material.encode()).hexdigest()
