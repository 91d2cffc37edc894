"""The scientific runtime's core module, compiled once per host into the compiled-code cache and deserialized after.

The cache entry is keyed like a component's (the module's SHA256, the wasmtime version, the engine
configuration: sandbox/compile_cache.py), and only files this host wrote are ever deserialized. The
module uses wasm exception handling, on by default in the engines of sandbox/engine.py (wasmtime 50),
so it runs in the same engines as components and under the same epoch ticker.
"""

import threading
from contextlib import nullcontext

from wasmtime import Engine, Module

from wasm_agents.sandbox.compile_cache import Compiling, load_compiled
from wasm_agents.scientific.wheel import RuntimeFiles

_loaded: dict[tuple[int, bool], Module] = {}
_lock = threading.Lock()


def load_module(engine: Engine, files: RuntimeFiles, fuel: bool, *, compiling: Compiling = nullcontext) -> Module:
    """Return the runtime's module compiled for `engine` (once per process); a compile (~2 min) runs within `compiling()`."""
    with _lock:  # one compile at a time: each takes GBs of memory
        key = (id(engine), fuel)
        if key not in _loaded:
            _loaded[key] = load_compiled(Module, engine, files.module, files.module_sha256, fuel, compiling=compiling)
        return _loaded[key]
