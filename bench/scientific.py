"""The scientific runtime's costs, in one run, against the targets of issue 15: compile, fresh instances, memory images, memory
per instance, numpy and pandas kernels against native, a chain of the data example, and its dist's size.

Usage: python bench/scientific.py [--compile] [--repeat N] [--rounds N] [--chains N]; prints the figures and the targets and
writes bench/results/scientific.json. --compile compiles the module once more in a child process (~2-6 min, ~2.5 GB) to time
it and take its peak RSS; without it the cached compile is used (a cold cache is compiled, and timed, at first load). Native
numpy and pandas must be importable. Memory is read from /proc (Linux): RSS counts the image's shared pages in every
instance that maps them, PSS shares them out.
"""

import argparse
import datetime
import gzip
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

from wasm_agents.artifacts.layout import COMPONENTS, IMAGES, SCIENTIFIC_ARTIFACT, SCIENTIFIC_MANIFEST
from wasm_agents.build import build
from wasm_agents.orchestrator import Runner
from wasm_agents.project import MIB, Limits
from wasm_agents.sandbox.compile_cache import compiled_path
from wasm_agents.sandbox.engine import engines
from wasm_agents.scientific import run_python
from wasm_agents.scientific import image as images
from wasm_agents.scientific.image import PAGE, Image, _checked, capture, open_image
from wasm_agents.scientific.instance import Instance, _Guest
from wasm_agents.scientific.module import load_module
from wasm_agents.scientific.wheel import RuntimeFiles, runtime_files

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "scientific.json"
KERNELS = BENCH / "scientific_kernels.py"
DATA_EXAMPLE = BENCH.parent / "examples" / "data"
ROOMY = Limits(memory_mb=1024, wall_time_s=120)
TOLERANCE = 1e-9  # answers must equal native numpy and pandas within this, absolutely
PACE_S = 0.05  # the gap between paced chains: enough for the warm pool to make its scientific sandboxes again
CHAIN_SOLVE = 50  # the chain's tasks: make data-demo's 2x2 system, a 50x50 one, 1000 sales rows over 10 regions
CHAIN_ROWS, CHAIN_REGIONS = 1000, 10
KERNEL_REPEAT = 15  # runs of each kernel per instance or process, after a warm-up: its median is that round's figure
THREAD_SETTINGS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
# Targets: figure, comparison, value. The kernels' ratios, the compile and the dist's size are reported, with no target.
TARGETS = {
    "restored_to_first_solve_ms": ("<=", 20.0),
    "chain_no_pool_solve_2x2_analyst_hop_ms": ("<=", 20.0),
    "memory_per_live_restored_instance_rss_mb": ("<=", 40.0),
}
COMPILE = """
import sys, time
from wasmtime import Engine, Module
from wasm_agents.sandbox.engine import engine_config
data = open(sys.argv[1], "rb").read()
start = time.monotonic()
Module(Engine(engine_config(False)), data)
print(time.monotonic() - start)
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
    parser.add_argument("--compile", action="store_true", help="time a compile in a child process (~2-6 min, ~2.5 GB)")
    parser.add_argument("--repeat", type=int, default=10, help="fresh instances per start-up figure")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved guest and native runs of the kernels")
    parser.add_argument("--chains", type=int, default=20, help="chains per task, paced")
    args = parser.parse_args()
    started = time.monotonic()
    files = runtime_files()
    figures: dict = {}
    load: dict[str, float] = {}  # the machine is shared: how busy it was as each section started

    def section(name: str) -> None:
        load[name] = round(os.getloadavg()[0], 1)

    if args.compile:
        section("compile")
        figures.update(compile_figures(files))
    section("runtime")
    figures.update(load_figures(files))
    with tempfile.TemporaryDirectory() as folder:
        figures.update(runtime_figures(files, Path(folder), args.repeat))
        section("kernels")
        figures.update(kernel_figures(open_image(Path(folder) / "numpy-pandas.img"), args.rounds))
    with tempfile.TemporaryDirectory() as folder:
        project = Path(shutil.copytree(DATA_EXAMPLE, Path(folder) / "data", ignore=shutil.ignore_patterns("dist", "__pycache__")))
        section("build")
        start = time.monotonic()
        build(project)
        figures["data_example_build_s"] = round(time.monotonic() - start, 1)
        figures.update(dist_figures(project / "dist"))
        section("chain")
        figures.update(chain_figures(project / "dist", args.chains))
    section("end")
    report = {
        "figures": figures,
        "targets": {key: target_row(figures[key], *target) for key, target in TARGETS.items()},
        "machine": {
            "load_average_1min": load,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "wasmtime": version("wasmtime"),
        },
        "run": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "seconds": round(time.monotonic() - started)},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, value in figures.items():
        print(f"{name:56} {value}")
    print()
    for name, row in report["targets"].items():
        print(f"{name:56} {row['value']} {row['target']}: {'met' if row['met'] else 'MISSED'}")


def target_row(value: float, comparison: str, target: float) -> dict:
    """A figure against its target."""
    met = value <= target if comparison == "<=" else value >= target
    return {"value": value, "target": f"{comparison} {target:g}", "met": met}


def compile_figures(files: RuntimeFiles) -> dict:
    """Compile the module in a child process: its time, the child's whole time and its peak RSS."""
    start = time.monotonic()
    seconds = float(subprocess.run([sys.executable, "-c", COMPILE, str(files.module)], check=True, capture_output=True, text=True).stdout)
    return {
        "compile_s": round(seconds, 1),
        "compile_process_s": round(time.monotonic() - start, 1),
        "compile_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def load_figures(files: RuntimeFiles) -> dict:
    """Load the compiled module into this process (compiling it first when the cache is cold), and its sizes."""
    compiled = compiled_path(files.module_sha256, False)
    cold = not compiled.exists()
    start = time.monotonic()
    load_module(engines().engine(False), files, False)
    seconds = time.monotonic() - start
    loaded = {"compile_on_first_load_s": round(seconds, 1)} if cold else {"load_compiled_ms": round(seconds * 1000, 1)}
    return {**loaded, "compiled_mb": round(compiled.stat().st_size / MIB, 1), "module_mb": round(files.module.stat().st_size / MIB, 1)}


def median_ms(source: str, repeat: int, image: Image | None = None) -> float:
    """The median ms of `repeat` fresh instances running `source`, from `image` when given."""
    times = []
    for _ in range(repeat):
        done = run_python(source, "null", ROOMY, image=image)
        assert done.ok, done.error
        times.append(done.duration_ms)
    return round(statistics.median(times), 1)


def runtime_figures(files: RuntimeFiles, folder: Path, repeat: int) -> dict:
    """Fresh instances importing numpy and pandas, a memory image taken after those imports (left in `folder`), instances
    restored from it, and the memory each live instance adds."""
    figures = {}
    few = max(3, repeat // 2)
    figures["fresh_instance_print_ms"] = median_ms("def main(task):\n    print('hello')\n", repeat)
    figures["fresh_instance_import_numpy_ms"] = median_ms("import numpy\ndef main(task):\n    return None\n", few)
    figures["fresh_instance_import_pandas_ms"] = median_ms("import pandas\ndef main(task):\n    return None\n", few)
    figures["fresh_import_to_first_solve_ms"] = median_ms(FIRST_SOLVE, few)
    figures["fresh_import_to_first_groupby_ms"] = median_ms(FIRST_GROUPBY, few)
    captured = capture(folder / "numpy-pandas.img", PRELOAD, files=files)
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
    figures["restored_print_ms"] = median_ms("def main(task):\n    print('hello')\n", repeat, image)
    figures["restored_to_first_solve_ms"] = median_ms(FIRST_SOLVE, repeat, image)
    figures["restored_to_first_groupby_ms"] = median_ms(FIRST_GROUPBY, repeat, image)
    figures["first_solve_speedup"] = round(figures["fresh_import_to_first_solve_ms"] / figures["restored_to_first_solve_ms"], 1)
    figures["first_groupby_speedup"] = round(figures["fresh_import_to_first_groupby_ms"] / figures["restored_to_first_groupby_ms"], 1)
    maps, images._MAPS = images._MAPS, False  # pages copied into each instance, as where mmap is not POSIX: what mapping them saves
    copied = _checked(captured.path.resolve(), files.module_sha256)
    figures["restored_by_copy_to_first_solve_ms"] = median_ms(FIRST_SOLVE, repeat, copied)
    memory = {"importing": _memory_per_instance(files, 8, None), "restored_by_copy": _memory_per_instance(files, 8, copied)}
    images._MAPS = maps
    memory["restored"] = _memory_per_instance(files, 8, image)
    for name, (rss, pss, private) in memory.items():
        figures[f"memory_per_live_{name}_instance_rss_mb"] = round(rss, 1)
        figures[f"memory_per_live_{name}_instance_pss_mb"] = round(pss, 1)
        figures[f"memory_per_live_{name}_instance_private_mb"] = round(private, 1)
    return figures


def kernel_figures(image: Image, rounds: int) -> dict:
    """bench/scientific_kernels.py in a fresh guest instance restored from `image`, then natively with OpenBLAS on one
    thread (as in the guest) and on its default threads, `rounds` times interleaved; each side's answers compared."""
    source = KERNELS.read_text()
    guest: list[dict] = []
    native: dict[str, list[dict]] = {"one_thread": [], "threads": []}
    threads = {key: value for key, value in os.environ.items() if key not in THREAD_SETTINGS}
    environments = {"one_thread": {**threads, **dict.fromkeys(THREAD_SETTINGS, "1")}, "threads": threads}
    for index in range(rounds):
        task = json.dumps({"repeat": KERNEL_REPEAT, "answers": index == 0})
        done = run_python(source, task, ROOMY, image=image, filename=KERNELS.name)
        assert done.ok, done.error
        guest.append(done.result)
        for name, environment in environments.items():
            ran = subprocess.run([sys.executable, str(KERNELS), task], check=True, capture_output=True, text=True, env=environment)
            native[name].append(json.loads(ran.stdout))
    figures: dict = {"kernels_guest_numpy": guest[0]["numpy"], "kernels_guest_pandas": guest[0]["pandas"]}
    ratios = []
    for kernel in guest[0]["ms"]:
        inside = [run["ms"][kernel] for run in guest]
        alone = [run["ms"][kernel] for run in native["one_thread"]]
        threaded = [run["ms"][kernel] for run in native["threads"]]
        per_round = [ours / theirs for ours, theirs in zip(inside, alone)]
        ratios.append(statistics.median(per_round))
        figures[f"kernel_{kernel}_guest_ms"] = round(statistics.median(inside), 3)
        figures[f"kernel_{kernel}_native_ms"] = round(statistics.median(alone), 3)
        figures[f"kernel_{kernel}_native_threads_ms"] = round(statistics.median(threaded), 3)
        figures[f"kernel_{kernel}_ratio"] = round(statistics.median(per_round), 2)
        figures[f"kernel_{kernel}_ratio_min_max"] = [round(min(per_round), 2), round(max(per_round), 2)]
        figures[f"kernel_{kernel}_ratio_vs_native_threads"] = round(statistics.median(inside) / statistics.median(threaded), 2)
        figures[f"kernel_{kernel}_max_abs_diff"] = max(
            _max_abs_diff(guest[0]["answers"][kernel], native["one_thread"][0]["answers"][kernel]),
            _max_abs_diff(guest[0]["answers"][kernel], native["threads"][0]["answers"][kernel]),
        )
    figures["kernels_ratio_geomean"] = round(math.prod(ratios) ** (1 / len(ratios)), 2)
    figures["kernels_equal_native_within_1e-9"] = all(figures[f"kernel_{kernel}_max_abs_diff"] <= TOLERANCE for kernel in guest[0]["ms"])
    return figures


def _max_abs_diff(ours, theirs) -> float:
    """The largest absolute difference between two answers of the same shape (lists, or dicts of lists)."""
    if isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), (ours.keys(), theirs.keys())
        return max(_max_abs_diff(ours[key], theirs[key]) for key in ours)
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max())


def chain_tasks() -> dict[str, tuple[dict, object]]:
    """The data example's tasks, each with native numpy's or pandas' answer."""
    i, j = np.indices((CHAIN_SOLVE, CHAIN_SOLVE))
    a = ((i * 31 + j * 17) % 101) / 101 - 0.5 + CHAIN_SOLVE * (i == j)
    b = (np.arange(CHAIN_SOLVE) * 13 % 29) / 29
    small_a, small_b = [[3.0, 1.0], [1.0, 2.0]], [9.0, 8.0]
    rows = [{"region": f"r{n * 7 % CHAIN_REGIONS}", "amount": (n * 7919 % 1000) / 8} for n in range(CHAIN_ROWS)]
    table = pd.DataFrame(rows).groupby("region")["amount"].agg(["sum", "mean", "count"])
    return {
        "solve_2x2": ({"op": "solve", "a": small_a, "b": small_b}, {"x": np.linalg.solve(small_a, small_b).tolist()}),
        f"solve_{CHAIN_SOLVE}x{CHAIN_SOLVE}": ({"op": "solve", "a": a.tolist(), "b": b.tolist()}, {"x": np.linalg.solve(a, b).tolist()}),
        f"groupby_{CHAIN_ROWS}_rows": (
            {"op": "totals", "rows": rows},
            {"by_region": {region: row.to_dict() for region, row in table.iterrows()}},
        ),
    }


def _answer_diff(got: dict, native: dict) -> float:
    """How far the chain's answer is from native's: the largest absolute difference over its numbers."""
    if "x" in native:
        return _max_abs_diff(got["x"], native["x"])
    assert got["by_region"].keys() == native["by_region"].keys()
    return max(abs(got["by_region"][region][column] - value) for region, row in native["by_region"].items() for column, value in row.items())


def chain_figures(dist: Path, chains: int) -> dict:
    """The chain root (default runtime) -> analyst (scientific) per task: the chain and the analyst's hop, warm pool and paced,
    interleaved; then the 2x2 solve with no pool, where the analyst's hop is a fresh instance restored from its image."""
    tasks = chain_tasks()
    diffs = [0.0]

    def run(runner: Runner, name: str, into: dict[str, list[float]]) -> None:
        task, native = tasks[name]
        result = runner.run(task)
        assert result.ok, result.error
        diffs.append(_answer_diff(result.result, native))
        hops = {hop.agent: hop.duration_ms for hop in result.hops}
        into.setdefault(f"{name}_ms", []).append(result.duration_ms)
        into.setdefault(f"{name}_analyst_hop_ms", []).append(hops["analyst"])
        into.setdefault(f"{name}_root_own_ms", []).append(hops["agent"] - hops["analyst"])  # the root's hop holds the analyst's

    warm: dict[str, list[float]] = {}
    cold: dict[str, list[float]] = {}
    with Runner(dist) as runner:
        for name in tasks:  # warm-up: first touches of the host's code paths
            runner.run(tasks[name][0])
        for _ in range(chains):
            for name in tasks:
                time.sleep(PACE_S)
                run(runner, name, warm)
    with Runner(dist, warm=0) as runner:
        runner.run(tasks["solve_2x2"][0])
        for _ in range(chains):
            run(runner, "solve_2x2", cold)
    figures = {}
    for prefix, samples in (("chain", warm), ("chain_no_pool", cold)):
        for key, values in samples.items():
            figures[f"{prefix}_{key}"] = round(statistics.median(values), 2)
            figures[f"{prefix}_{key}_min_max"] = [round(min(values), 2), round(max(values), 2)]
    figures["chain_answers_max_abs_diff"] = max(diffs)
    figures["chain_answers_equal_native_within_1e-9"] = max(diffs) <= TOLERANCE
    return figures


def dist_figures(dist: Path) -> dict:
    """The dist's bytes: in all, per part, and what the scientific runtime and the agents' images add."""
    sizes = {path.relative_to(dist).as_posix(): path.stat().st_size for path in dist.rglob("*") if path.is_file()}
    parts = {
        "scientific_artifact": sizes[SCIENTIFIC_ARTIFACT],
        "images": sum(size for name, size in sizes.items() if name.startswith(f"{IMAGES}/")),
        "components": sum(size for name, size in sizes.items() if name.startswith(f"{COMPONENTS}/")),
    }
    total = sum(sizes.values())
    scientific = parts["scientific_artifact"] + sizes[SCIENTIFIC_MANIFEST] + parts["images"]
    return {
        "dist_bytes": total,
        **{f"dist_{part}_bytes": size for part, size in parts.items()},
        "dist_rest_bytes": total - sum(parts.values()),
        "dist_files_bytes": {name: sizes[name] for name in sorted(sizes) if name.startswith((f"{IMAGES}/", f"{COMPONENTS}/"))},
        "dist_scientific_adds_bytes": scientific,
        "dist_scientific_share": round(scientific / total, 3),
    }


def _memory_per_instance(files: RuntimeFiles, count: int, image: Image | None) -> tuple[float, float, float]:
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
