"""The scientific runtime's costs, in one run: compile, fresh instances, imports, memory images, memory per instance, a numpy kernel.

Usage: python bench/scientific.py [--compile] [--repeat N]; prints the figures and writes bench/results/scientific.json.
--compile compiles the module once more in a child process (~2 min, ~2.5 GB) to time it and take its peak RSS;
without it the cached compile is used. Native numpy (for the kernel's ratio) must be importable. Memory is read
from /proc (Linux): RSS counts the image's shared pages in every instance that maps them, PSS shares them out.
"""

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox.compile_cache import compiled_path
from wasm_agents.sandbox.engine import engines
from wasm_agents.scientific import run_python
from wasm_agents.scientific import image as images
from wasm_agents.scientific.image import PAGE, Image, _checked, capture, open_image
from wasm_agents.scientific.instance import Instance, _Guest
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
PRELOAD = "import numpy, pandas\n"
FIRST_SOLVE = "import numpy as np\ndef main(task):\n    return np.linalg.solve(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([3.0, 5.0])).tolist()\n"
FIRST_GROUPBY = """
import pandas as pd
def main(task):
    return pd.DataFrame({"k": ["a", "b", "a", "c"], "v": [1.0, 2.0, 3.0, 4.0]}).groupby("k")["v"].agg(["sum", "mean"]).to_dict("index")
"""
LIVE = "import numpy as np, pandas as pd\nnp.linalg.solve(np.eye(3) * 2, np.ones(3))\npd.DataFrame({'k': [1, 2, 1], 'v': [1.0, 2.0, 3.0]}).groupby('k')['v'].sum()\n"


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

    def median_ms(source: str, repeat: int, image: Image | None = None) -> float:
        times = []
        for _ in range(repeat):
            done = run_python(source, "null", ROOMY, image=image)
            assert done.ok, done.error
            times.append(done.duration_ms)
        return round(statistics.median(times), 1)

    few = max(3, args.repeat // 2)
    figures["fresh_instance_print_ms"] = median_ms("def main(task):\n    print('hello')\n", args.repeat)
    figures["fresh_instance_import_numpy_ms"] = median_ms("import numpy\ndef main(task):\n    return None\n", few)
    figures["fresh_instance_import_pandas_ms"] = median_ms("import pandas\ndef main(task):\n    return None\n", few)
    figures["fresh_import_to_first_solve_ms"] = median_ms(FIRST_SOLVE, few)
    figures["fresh_import_to_first_groupby_ms"] = median_ms(FIRST_GROUPBY, few)
    with tempfile.TemporaryDirectory() as folder:
        captured = capture(Path(folder) / "numpy-pandas.img", PRELOAD, files=files)
        data = captured.path.read_bytes()
        figures["image_capture_s"] = round(captured.seconds, 2)
        figures["image_memory_mb"] = round(captured.pages * PAGE / MIB, 1)
        figures["image_mb"] = round(len(data) / MIB, 1)
        figures["image_gzip6_mb"] = round(len(gzip.compress(data, compresslevel=6)) / MIB, 1)
        checks = []
        for _ in range(5):
            start = time.perf_counter()
            _checked(captured.path.resolve(), files.module_sha256)
            checks.append(time.perf_counter() - start)
        figures["image_open_ms"] = round(statistics.median(checks) * 1000, 1)
        image = open_image(captured.path)
        figures["restored_print_ms"] = median_ms("def main(task):\n    print('hello')\n", args.repeat, image)
        figures["restored_to_first_solve_ms"] = median_ms(FIRST_SOLVE, args.repeat, image)
        figures["restored_to_first_groupby_ms"] = median_ms(FIRST_GROUPBY, args.repeat, image)
        figures["first_solve_speedup"] = round(figures["fresh_import_to_first_solve_ms"] / figures["restored_to_first_solve_ms"], 1)
        figures["first_groupby_speedup"] = round(figures["fresh_import_to_first_groupby_ms"] / figures["restored_to_first_groupby_ms"], 1)
        maps, images._MAPS = images._MAPS, False  # pages copied into each instance, as where mmap is not POSIX: what mapping them saves
        copied = _checked(captured.path.resolve(), files.module_sha256)
        figures["restored_by_copy_to_first_solve_ms"] = median_ms(FIRST_SOLVE, args.repeat, copied)
        memory = {"importing": _memory_per_instance(files, 8, None), "restored_by_copy": _memory_per_instance(files, 8, copied)}
        images._MAPS = maps
        memory["restored"] = _memory_per_instance(files, 8, image)
        for name, (rss, pss, private) in memory.items():
            figures[f"memory_per_live_{name}_instance_rss_mb"] = round(rss, 1)
            figures[f"memory_per_live_{name}_instance_pss_mb"] = round(pss, 1)
            figures[f"memory_per_live_{name}_instance_private_mb"] = round(private, 1)

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
    figures["load_average_1min"] = round(os.getloadavg()[0], 1)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    for name, value in figures.items():
        print(f"{name:53} {value}")


def _memory_per_instance(files, count: int, image: Image | None) -> tuple[float, float, float]:
    """RSS, PSS and private memory added per live instance that has used numpy and pandas (imported, or from `image`),
    over `count` instances kept alive at once."""
    instances = []
    before = _memory_mb()
    for _ in range(count):
        instance = Instance.start(_Guest(ROOMY, time.monotonic() + ROOMY.wall_time_s), files, image=image)
        assert instance.run(LIVE.encode()) == 0, instance.guest.text("stderr")
        instances.append(instance)
    added = [(after - earlier) / count for after, earlier in zip(_memory_mb(), before)]
    for instance in instances:
        instance.close()
    return added[0], added[1], added[2]


def _memory_mb() -> tuple[float, float, float]:
    """This process's RSS, PSS and private dirty memory, in MiB."""
    fields = {}
    for name in ("/proc/self/status", "/proc/self/smaps_rollup"):
        for line in Path(name).read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0]) / 1024 if value.strip().endswith("kB") else 0
    return fields["VmRSS"], fields["Pss"], fields["Private_Dirty"]


if __name__ == "__main__":
    main()
