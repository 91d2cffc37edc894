"""The scientific runtime's costs, in one run: compile, fresh instances, imports, memory per instance, a numpy kernel.

Usage: python bench/scientific.py [--compile] [--repeat N]; prints the figures and writes bench/results/scientific.json.
--compile compiles the module once more in a child process (~2 min, ~2.5 GB) to time it and take its peak RSS;
without it the cached compile is used. Native numpy (for the kernel's ratio) must be importable.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from wasmtime import Store

from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox.compile_cache import compiled_path
from wasm_agents.sandbox.engine import engines
from wasm_agents.scientific import run_python
from wasm_agents.scientific.instance import _current, _Guest, _wasi_config, linker
from wasm_agents.scientific.module import load_module
from wasm_agents.scientific.wheel import runtime_files

RESULTS = Path(__file__).resolve().parent / "results" / "scientific.json"
ROOMY = Limits(memory_mb=1024, wall_time_s=120)
COMPILE = """
import sys, time
from wasmtime import Engine, Module
from wasm_agents.sandbox.engine import engine_config
data = open(sys.argv[1], "rb").read()
start = time.monotonic()
Module(Engine(engine_config(False)), data)
print(time.monotonic() - start)
"""
SOLVE = """
import time
import numpy as np
def main(task):
    a, b = np.array(task["a"]), np.array(task["b"])
    np.linalg.solve(a, b)
    start = time.perf_counter()
    for _ in range(task["n"]):
        np.linalg.solve(a, b)
    return (time.perf_counter() - start) / task["n"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="time a compile in a child process (~2 min, ~2.5 GB)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    files = runtime_files()
    figures: dict[str, float] = {}
    if args.compile:
        start = time.monotonic()
        seconds = float(subprocess.run([sys.executable, "-c", COMPILE, str(files.module)], check=True, capture_output=True, text=True).stdout)
        figures["compile_s"] = round(seconds, 1)
        figures["compile_process_s"] = round(time.monotonic() - start, 1)
        figures["compile_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    engine = engines().engine(False)
    start = time.monotonic()
    load_module(engine, files, False)
    figures["load_compiled_ms"] = round((time.monotonic() - start) * 1000, 1)
    figures["compiled_mb"] = round(compiled_path(files.module_sha256, False).stat().st_size / MIB, 1)
    figures["module_mb"] = round(files.module.stat().st_size / MIB, 1)

    def median_ms(source: str, repeat: int) -> float:
        times = []
        for _ in range(repeat):
            done = run_python(source, "null", ROOMY)
            assert done.ok, done.error
            times.append(done.duration_ms)
        return round(statistics.median(times), 1)

    figures["fresh_instance_print_ms"] = median_ms("def main(task):\n    print('hello')\n", args.repeat)
    figures["fresh_instance_import_numpy_ms"] = median_ms("import numpy\ndef main(task):\n    return None\n", max(3, args.repeat // 2))
    figures["fresh_instance_import_pandas_ms"] = median_ms("import pandas\ndef main(task):\n    return None\n", max(3, args.repeat // 2))
    figures["memory_per_live_numpy_pandas_instance_mb"] = round(_memory_per_instance(files, 8), 1)

    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((50, 50)) + 50 * np.eye(50), rng.standard_normal(50)
    n = 2000
    done = run_python(SOLVE, json.dumps({"a": a.tolist(), "b": b.tolist(), "n": n}), ROOMY)
    assert done.ok, done.error
    start = time.perf_counter()
    for _ in range(n):
        np.linalg.solve(a, b)
    native = (time.perf_counter() - start) / n
    figures["solve_50_guest_us"] = round(done.result * 1e6, 1)
    figures["solve_50_native_us"] = round(native * 1e6, 1)
    figures["solve_50_ratio"] = round(done.result / native, 2)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    for name, value in figures.items():
        print(f"{name:45} {value}")


def _memory_per_instance(files, count: int) -> float:
    """RSS added per live instance that has imported numpy and pandas, over `count` instances kept alive at once."""
    engine = engines().engine(False)
    module = load_module(engine, files, False)
    code = b"import numpy, pandas\n"
    stores = []
    before = _rss_mb()
    for _ in range(count):
        store = Store(engine)
        guest = _Guest(ROOMY, time.monotonic() + ROOMY.wall_time_s)
        _current.guest = guest
        store.set_wasi(_wasi_config(guest, files, ()))
        store.set_epoch_deadline(10**9)
        exports = linker(engine).instantiate(store, module).exports(store)
        at = exports["host_alloc"](store, len(code))
        exports["memory"].write(store, code, at)
        assert exports["turn"](store, at, len(code)) == 0, guest.text("stderr")
        stores.append(store)
    _current.guest = None
    added = (_rss_mb() - before) / count
    for store in stores:
        store.close()
    return added


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


if __name__ == "__main__":
    main()
