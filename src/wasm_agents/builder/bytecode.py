"""Bytecode for the modules an agent's snapshot lacks, compiled at build time by the agent's own component.

A fresh instance imports whatever its snapshot lacks from the mounted agent folder and vendored packages;
without bytecode it would compile those sources in every instance (a lazy `import sympy`: ~6 s instead of
~1 s). Compiling them in the snapshot would grow every instance's image by the compiler's garbage, so the
component is asked once, in a fresh instance of its own, with writable copies of those folders mounted.
Loading the component this way also compiles it for this host, so the first `run` starts at once.
"""

import json
from pathlib import Path

from wasmtime import Store, WasiConfig

from wasm_agents.artifacts.files import sha256_file
from wasm_agents.errors import BuildError
from wasm_agents.sandbox import CODE_MOUNT, COMPILE_BYTECODE, DEPS_MOUNT, GUEST_DIR, SANDBOX_MOUNT, STDLIB_MOUNT
from wasm_agents.sandbox.compile_cache import compiled_path, load_component
from wasm_agents.sandbox.engine import engines

NO_DEADLINE = 10**12  # epoch ticks: the request runs only the harness, on the build's own machine
NO_FUEL_LIMIT = 10**18


def compile_bytecode(agent_name: str, component_file: Path, fuel: bool, code_dir: Path, site_packages: Path, stdlib: Path) -> int:
    """Have the component write .pyc files for the modules its snapshot lacks into `code_dir` and `site_packages`."""
    engine_set = engines()
    engine = engine_set.engine(fuel)
    component = load_component(engine, component_file, sha256_file(component_file), fuel)
    store = Store(engine)
    wasi = WasiConfig()
    wasi.preopen_dir(str(stdlib), STDLIB_MOUNT, fs_mutable=False)
    wasi.preopen_dir(str(GUEST_DIR), SANDBOX_MOUNT, fs_mutable=False)
    wasi.preopen_dir(str(code_dir), CODE_MOUNT, fs_mutable=True)
    wasi.preopen_dir(str(site_packages), DEPS_MOUNT, fs_mutable=True)
    store.set_wasi(wasi)
    store.set_epoch_deadline(NO_DEADLINE)
    if fuel:
        store.set_fuel(NO_FUEL_LIMIT)
    run = engine_set.linker(fuel).instantiate(store, component).get_func(store, "run")
    answer = run(store, COMPILE_BYTECODE)
    if answer.tag != "ok":
        raise BuildError(f"agent '{agent_name}': compiling its modules to bytecode failed: {json.loads(answer.payload).get('message')}")
    return int(json.loads(answer.payload))


def compile_for_host(component_file: Path, fuel: bool) -> None:
    """Compile the component for this host into the compiled cache unless it is there, so the first `run` starts at once."""
    sha256 = sha256_file(component_file)
    if not compiled_path(sha256, fuel).is_file():
        load_component(engines().engine(fuel), component_file, sha256, fuel)
