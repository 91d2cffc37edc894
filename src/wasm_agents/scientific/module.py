"""The scientific runtime's core module, compiled once per host into the compiled-code cache and deserialized after.

The cache entry is keyed like a component's (the module's SHA256, the wasmtime version, the engine
configuration: sandbox/compile_cache.py), and only files this host wrote are ever deserialized. The
module uses wasm exception handling, on by default in the engines of sandbox/engine.py (wasmtime 50),
so it runs in the same engines as components and under the same epoch ticker.
"""

import hashlib
import threading
from contextlib import nullcontext

from wasmtime import Engine, Module, WasmtimeError

from wasm_agents.errors import VerificationError
from wasm_agents.paths import write_atomically
from wasm_agents.sandbox.compile_cache import Compiling, compiled_path
from wasm_agents.scientific.wheel import RuntimeFiles

_loaded: dict[tuple[int, bool], Module] = {}
_lock = threading.Lock()


def load_module(engine: Engine, files: RuntimeFiles, fuel: bool, *, compiling: Compiling = nullcontext) -> Module:
    """Return the runtime's module compiled for `engine` (once per process); a compile (~2 min) runs within `compiling()`."""
    with _lock:  # one compile at a time: each takes GBs of memory
        key = (id(engine), fuel)
        if key not in _loaded:
            _loaded[key] = _load(engine, files, fuel, compiling)
        return _loaded[key]


def _load(engine: Engine, files: RuntimeFiles, fuel: bool, compiling: Compiling) -> Module:
    compiled = compiled_path(files.module_sha256, fuel)
    if compiled.is_file():
        try:
            return Module.deserialize_file(engine, str(compiled))
        except WasmtimeError:
            if compiled.is_file():
                raise
            # `wasm-agents cache clean` removed it meanwhile: compile it again
    data = files.module.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != files.module_sha256:  # changed on disk since it was unpacked: compile only what was verified
        raise VerificationError([f"{files.module}: sha256 mismatch: expected {files.module_sha256}, got {actual}"])
    with compiling():
        module = Module(engine, data)
        del data
        write_atomically(compiled, module.serialize())
    return module
