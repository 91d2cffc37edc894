"""Benchmarks: start-up, hops, throughput, memory and CPU, against native CPython and the original design (Pyodide in Node.js).

One run measures everything side by side and writes bench/results/latest.json plus a dated copy;
every key holds the median of >= 5 repetitions with min and max. Prints a table against the targets
and draws the plots of docs/PERFORMANCE.md (when matplotlib is installed).

Usage: python bench/run.py [--quick] [--no-cold-build] [--no-pyodide] [--no-plots]
Not part of `make test` or CI. Needs ~4-6 minutes on 2 cores (cold builds fetch wheels from PyPI;
the Pyodide baseline installs the npm package `pyodide` into a temp dir when node and npm exist).
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from wasm_agents import Local, Runner, build, run_tasks
from wasm_agents.sandbox import WARM_UP

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
EXAMPLE = ROOT / "examples" / "quickstart"
KERNELS_PROJECT = BENCH / "projects" / "kernels"
RESULTS = BENCH / "results"
ADD = {"op": "add", "a": 2, "b": 3}
MULTIPLY = {"op": "multiply", "a": 6, "b": 7}
KERNELS = ("fib", "loop", "json", "regex", "text", "float")  # the kernels agent's KERNELS, in its order
LIVE_INSTANCES = (1, 8, 64, 256)
CONCURRENCY = (1, 2, 4, 8)
THROUGHPUT_MODES = {"processes": os.cpu_count() or 1, "threads": 0}  # Local(workers=...): one per core, and none
PACE_S = 0.01  # the gap between paced tasks: enough for the warm pool to refill
PYODIDE_VERSION = "314.0.7"  # Python 3.14, as in our guests

# Targets: (key, comparison, value, unit)
TARGETS = {
    "cold_start_ms": ("<=", 2.0),
    "hop_ms": ("<=", 1.0),
    "cpu_ratio_vs_native": ("<=", 1.5),
    "cpu_ratio_vs_pyodide": ("<=", 1.0),
    "mem_per_instance_mb": ("<=", 8.0),
    "chains_per_s": (">=", 400.0),
    "build_nochange_s": ("<=", 1.0),
    "process_speedup_vs_pyodide": (">=", 40.0),
}


def summary(samples: list[float], digits: int = 3) -> dict:
    """Median, min, max and count of `samples`."""
    return {
        "median": round(statistics.median(samples), digits),
        "min": round(min(samples), digits),
        "max": round(max(samples), digits),
        "n": len(samples),
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def run_process(argv: list[str], env: dict | None = None, cwd: Path | None = None, peak_rss: bool = False) -> tuple[float, float | None, str]:
    """Run a whole process; return its wall time in ms, its peak RSS in MiB (when asked) and its stdout.

    With `peak_rss` the command runs under bench/peak_rss.py (a small parent, so the figure is the
    command's own peak; it adds that parent's start-up to the wall time, so time such runs separately).
    """
    rss_file = None
    if peak_rss:
        handle, rss_file = tempfile.mkstemp(suffix=".json")
        os.close(handle)
        argv = [sys.executable, str(BENCH / "peak_rss.py"), rss_file, *argv]
    # As installed, with its bytecode: pip compiles a package's modules at install, and an editable checkout run
    # with PYTHONDONTWRITEBYTECODE would compile every module of ours from source in every process.
    env = {key: value for key, value in (os.environ if env is None else env).items() if key != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd, check=False)
    elapsed = ms_since(start)
    text = done.stdout.decode()
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited with {done.returncode}: {text[-500:]}")
    peak = None
    if rss_file:
        peak = json.loads(Path(rss_file).read_text())["peak_rss_mb"]
        os.unlink(rss_file)
    return elapsed, peak, text


# --- the machine -------------------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    node = shutil.which("node")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "wasmtime": package("wasmtime"),
        "componentize-py": package("componentize-py"),
        "guest_python": "3.14 (componentize-py)",
        "node": subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip() if node else None,
        "pyodide": PYODIDE_VERSION if node else None,
    }


# --- builds ------------------------------------------------------------------------------------------


def bench_build_cold(project: Path, repeat: int) -> list[float]:
    """Cold builds in a subprocess under an empty XDG_CACHE_HOME: wheels, pip's cache and components all cold.

    The user's own caches are never touched.
    """
    samples = []
    cli = Path(sys.executable).with_name("wasm-agents")
    for index in range(repeat):
        with tempfile.TemporaryDirectory(prefix="wasm-agents-bench-cold-") as temp:
            copy = Path(shutil.copytree(project, Path(temp) / "project", ignore=shutil.ignore_patterns("dist")))
            env = {**os.environ, "XDG_CACHE_HOME": str(Path(temp) / "cache"), "PIP_NO_CACHE_DIR": "1"}
            elapsed, _, _ = run_process([str(cli), "build", str(copy), "--quiet"], env=env)
            samples.append(elapsed / 1000)
            log(f"cold build {index + 1}/{repeat}: {elapsed / 1000:.1f} s")
    return samples


def bench_build_nochange(project: Path, repeat: int) -> tuple[list[float], list[float]]:
    """Rebuilds with nothing changed: in-process `build()` and `wasm-agents build` as a process."""
    build(project)  # make sure the caches hold this project
    in_process = []
    for _ in range(repeat):
        start = time.perf_counter()
        build(project)
        in_process.append(ms_since(start) / 1000)
    cli = Path(sys.executable).with_name("wasm-agents")
    as_process = [run_process([str(cli), "build", str(project), "--quiet"])[0] / 1000 for _ in range(repeat)]
    return in_process, as_process


# --- latency in-process ------------------------------------------------------------------------------


def timed(runner: Runner, task: dict, expect) -> float:
    start = time.perf_counter()
    result = runner.run(task)
    elapsed = ms_since(start)
    if not result.ok or result.result != expect:
        raise RuntimeError(f"unexpected result for {task}: {result.to_json()}")
    return elapsed


def bench_latency(dist: Path, repeat: int) -> dict:
    """One-agent and two-agent tasks: paced (the pool refills), back to back (it drains), no pool at all."""
    out = {}
    with Runner(dist) as runner:
        for _ in range(20):  # warm-up: page cache, first-call faults, worker threads
            timed(runner, MULTIPLY, 42)
        time.sleep(0.2)
        one, two = [], []
        for _ in range(repeat):  # paced: interleaved, a gap before each task
            time.sleep(PACE_S)
            one.append(timed(runner, ADD, 5))
            time.sleep(PACE_S)
            two.append(timed(runner, MULTIPLY, 42))
        out["paced"] = {"one": one, "two": two}
        one, two = [], []
        for _ in range(repeat):  # back to back: every hop makes its sandbox on the critical path
            one.append(timed(runner, ADD, 5))
            two.append(timed(runner, MULTIPLY, 42))
        out["back_to_back"] = {"one": one, "two": two}
    with Runner(dist, warm=0) as runner:  # no pool: instantiate -> warm-up -> run on the critical path
        for _ in range(5):
            timed(runner, MULTIPLY, 42)
        one, two = [], []
        for _ in range(repeat):
            time.sleep(PACE_S / 5)  # let the previous sandbox's disposal finish off the clock
            one.append(timed(runner, ADD, 5))
            time.sleep(PACE_S / 5)
            two.append(timed(runner, MULTIPLY, 42))
        out["no_pool"] = {"one": one, "two": two}
    return out


def bench_cold_phases(dist: Path, repeat: int) -> dict:
    """Where a fresh sandbox's time goes: Store+WASI, instantiate, warm-up call, the agent's run call.

    Mirrors sandbox/pool.py `SandboxMaker.make` step by step (timing each) and then one real run.
    """
    from wasmtime import Store

    from wasm_agents.project import MIB
    from wasm_agents.sandbox.engine import PREPARE_TICKS, WARM_UP_HOST, answering
    from wasm_agents.sandbox.pool import GuestOutput, wasi_config

    phases = {"store_wasi": [], "instantiate": [], "warm_up_call": [], "run_call": [], "drop": [], "total": []}
    config_json = json.dumps({"task": ADD, "agent": "agent", "run_id": "bench", "settings": {}})
    with Runner(dist, warm=0) as runner:
        maker = runner.maker("agent")
        engines, component, limits, mounts = maker.engines, maker.component, maker.limits, maker.mounts
        for index in range(repeat + 5):
            t0 = time.perf_counter()
            store = Store(engines.engine(False))
            store.set_wasi(wasi_config(GuestOutput(), mounts.read_only, None))
            store.set_limits(memory_size=limits.memory_mb * MIB)
            store.set_epoch_deadline(PREPARE_TICKS)
            t1 = time.perf_counter()
            instance = engines.linker(False).instantiate(store, component)
            run = instance.get_func(store, "run")
            t2 = time.perf_counter()
            with answering(WARM_UP_HOST):
                run(store, WARM_UP)
                run.post_return(store)
            t3 = time.perf_counter()
            answer = run(store, config_json)
            run.post_return(store)
            t4 = time.perf_counter()
            assert answer.tag == "ok" and json.loads(answer.payload) == 5, answer
            del run, instance, store
            t5 = time.perf_counter()
            if index >= 5:  # the first few pay one-off faults
                for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t4 - t0), strict=True):
                    phases[key].append(value * 1000)
            time.sleep(0.002)
    return phases


def tree_cpu_s() -> float:
    """CPU seconds (user and system) used so far by this process and its children still running (Linux: from /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
        if int(stat.parent.name) == os.getpid() or int(fields[1]) == os.getpid():
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def bench_throughput(dist: Path, repeat: int, chains: int) -> dict:
    """Two-agent chains per second through run_tasks (what `wasm-agents run --concurrency N` does) with 1, 2, 4 and 8 at
    once, in worker processes and on threads of this process, interleaved in one run."""
    keys = ("rate", "steady", "first_s", "cpu_ms", "steady_cpu_ms")
    out: dict = {mode: {str(c): {key: [] for key in keys} for c in CONCURRENCY} for mode in THROUGHPUT_MODES}
    list(run_tasks(dist, [MULTIPLY] * 20, Local(2)))  # page cache and compiled cache warm for both
    for _ in range(repeat):
        for concurrency in CONCURRENCY:
            for mode, workers in THROUGHPUT_MODES.items():
                figures = out[mode][str(concurrency)]
                settled = chains // 5  # from here on, the workers (or the Runner) are up and the pools full
                start, cpu_start = time.perf_counter(), os.times()
                stamps, cpu_at = [], {}
                for line in run_tasks(dist, [MULTIPLY] * chains, Local(concurrency, workers)):
                    if not (line["ok"] and line["result"] == 42):
                        raise RuntimeError(f"a chain failed under load: {line}")
                    stamps.append(time.perf_counter())
                    if len(stamps) in (settled, chains):  # the workers still run: their CPU is in /proc
                        cpu_at[len(stamps)] = tree_cpu_s()
                elapsed, cpu_end = time.perf_counter() - start, os.times()  # the workers have ended: their CPU is counted
                cpu = sum(cpu_end[:4]) - sum(cpu_start[:4])  # user and system, of this process and its children
                figures["rate"].append(chains / elapsed)
                figures["steady"].append((chains - settled) / (stamps[-1] - stamps[settled - 1]))
                figures["first_s"].append(stamps[0] - start)
                figures["cpu_ms"].append(cpu * 1000 / chains)
                figures["steady_cpu_ms"].append((cpu_at[chains] - cpu_at[settled]) * 1000 / (chains - settled))
                time.sleep(0.1)
    for mode in THROUGHPUT_MODES:
        for concurrency in CONCURRENCY:
            figures = out[mode][str(concurrency)]
            log(f"throughput, {mode}, concurrency {concurrency}: {statistics.median(figures['steady']):.0f} chains/s steady "
                f"({statistics.median(figures['steady_cpu_ms']):.1f} ms CPU per chain), {statistics.median(figures['rate']):.0f} "
                f"from the start ({statistics.median(figures['cpu_ms']):.1f} ms), first line after {statistics.median(figures['first_s']):.2f} s")
    return out


def bench_cli_run(dist: Path, repeat: int) -> tuple[list[float], list[float]]:
    """`wasm-agents run DIST --task MULTIPLY` as a whole process: wall ms and peak RSS MiB."""
    cli = Path(sys.executable).with_name("wasm-agents")
    argv = [str(cli), "run", str(dist), "--task", json.dumps(MULTIPLY), "--log-level", "warning"]
    wall, rss = [], []
    run_process(argv)  # warm the page cache
    for _ in range(repeat):
        elapsed, _, text = run_process(argv)
        if json.loads(text)["result"] != 42:
            raise RuntimeError(f"wasm-agents run gave {text}")
        wall.append(elapsed)
    for _ in range(5):
        rss.append(run_process(argv, peak_rss=True)[1])
    return wall, rss


# --- memory ------------------------------------------------------------------------------------------


def bench_ray(dist: Path, chains: int) -> dict:
    """Chains per second on a local Ray (1 and 2 workers); skipped when ray is not installed."""
    try:
        import ray  # noqa: F401 - only to know whether the extra is installed
    except ImportError:
        return {"skipped": "ray is not installed (pip install 'wasm-agents[ray]')"}
    done = subprocess.run([sys.executable, str(BENCH / "ray_throughput.py"), str(dist), str(chains)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"skipped": f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"}
    return json.loads(done.stdout.splitlines()[-1])


def bench_memory(dist: Path, repeat: int) -> dict:
    """Process RSS growth per live sandbox with 1, 8, 64 and 256 held at once, each count in fresh processes."""
    out = {}
    for count in LIVE_INSTANCES:
        probes = []
        for _ in range(repeat):
            _, _, text = run_process([sys.executable, str(BENCH / "mem_probe.py"), str(dist), "agent", str(count)])
            probes.append(json.loads(text))
        out[str(count)] = probes
        log(f"memory with {count} live: {statistics.median(p['per_instance_mb'] for p in probes):.2f} MiB each")
    return out


# --- CPU ---------------------------------------------------------------------------------------------


def native_pythons() -> dict[str, str]:
    """The bench's own CPython, plus the newest other CPython 3.12+ found (closer to the guest's 3.14)."""
    found = {platform.python_version(): sys.executable}
    candidates = [shutil.which(f"python3.{minor}") for minor in (14, 13, 12)]
    candidates += sorted(Path.home().glob(".pyenv/versions/3.1[234]*/bin/python3"), reverse=True)
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([str(candidate), "-c", "import platform; print(platform.python_version())"],
                               capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() not in found:
            found[probe.stdout.strip()] = str(candidate)
            break
    return found


def bench_cpu(dist: Path, repeat: int) -> dict:
    """Each kernel in the guest (default limits: epoch deadline on, no fuel) and natively, same code.

    Native runs happen in a clean subprocess (in this process the epoch ticker and a heap full of
    wasmtime objects would slow them), alternating with the guest runs so drift in a noisy VM hits
    both sides. Other CPythons found (closer to the guest's 3.14) run afterwards, for information.
    """
    host = platform.python_version()
    out = {"guest": {}, "guest_hop": {}, "native": {host: {}}}

    def native_once(executable: str, kernel: str) -> float:
        return json.loads(run_process([executable, str(BENCH / "native_kernels.py"), kernel, "1"])[2])[0]

    with Runner(dist) as runner:
        for kernel in KERNELS:
            runner.run({"kernel": kernel})  # warm-up; native_kernels.py warms up too
            inside, hop, native = [], [], []
            for _ in range(repeat):
                time.sleep(0.02)  # the pool refills off the clock
                result = runner.run({"kernel": kernel})
                if not result.ok:
                    raise RuntimeError(f"kernel {kernel} failed: {result.error}")
                inside.append(result.result["ms"])
                hop.append(result.hops[0].duration_ms)
                native.append(native_once(sys.executable, kernel))
            out["guest"][kernel] = inside
            out["guest_hop"][kernel] = hop
            out["native"][host][kernel] = native
    for python_version, executable in native_pythons().items():
        if python_version == host:
            continue
        out["native"][python_version] = {
            kernel: json.loads(run_process([executable, str(BENCH / "native_kernels.py"), kernel, str(repeat)])[2])
            for kernel in KERNELS
        }
    return out


# --- native hop baseline -----------------------------------------------------------------------------


def bench_native_hop(repeat: int) -> dict:
    """The same two agents called in-process by plain Python, JSON-encoding each task and result as the host does."""
    sdk = type(sys)("wasm_agents_sdk")
    sys.modules["wasm_agents_sdk"] = sdk
    try:
        import dateutil.parser  # noqa: F401
    except ImportError:  # the root agent imports it at module level; it is not used by these tasks
        stub = type(sys)("dateutil")
        stub.parser = type(sys)("dateutil.parser")
        sys.modules.update({"dateutil": stub, "dateutil.parser": stub.parser})

    def load(folder: str, name: str):
        spec = importlib.util.spec_from_file_location(name, EXAMPLE / folder / "main.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def invoke(module, task_json: str) -> str:
        return json.dumps(module.main({"task": json.loads(task_json), "agent": "x", "run_id": "x", "settings": {}}).run())

    sdk.log = lambda *args, **kwargs: None
    sdk.delegate = lambda task, to=None: json.loads(invoke(multiplier, json.dumps(task)))
    root, multiplier = load("agent", "bench_native_root"), load("agent-multiplier", "bench_native_multiplier")
    one, two = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        json.loads(invoke(root, json.dumps(ADD)))
        one.append(ms_since(start))
        start = time.perf_counter()
        assert json.loads(invoke(root, json.dumps(MULTIPLY))) == 42
        two.append(ms_since(start))
    return {"one": one, "two": two}


# --- the original design: Pyodide in Node.js -----------------------------------------------------------


def bench_pyodide(repeat: int, work: Path) -> dict:
    """The example's two agents in Pyodide on Node.js: process cold start, whole-process chain, warm chain, RSS."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return {"skipped": "node or npm not found: the Pyodide baseline needs both"}
    prefix = work / "pyodide-npm"
    prefix.mkdir()
    (prefix / "package.json").write_text('{"name": "bench-pyodide", "private": true}')
    install = subprocess.run([npm, "install", "--no-audit", "--no-fund", f"pyodide@{PYODIDE_VERSION}"],
                             cwd=prefix, capture_output=True, text=True, check=False)
    if install.returncode != 0:
        return {"skipped": f"npm install pyodide failed: {install.stderr[-300:]}"}
    pyodide_dir = prefix / "node_modules" / "pyodide"
    # The root agent's pinned wheels (python-dateutil, six), fetched by pip from PyPI: micropip is not
    # part of the npm package and Pyodide's CDN is out of reach, so they are unpacked into its site-packages.
    wheels = work / "pyodide-wheels"
    fetch = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", str(wheels), "python-dateutil==2.9.0.post0", "six==1.17.0"], capture_output=True, text=True, check=False)
    if fetch.returncode != 0:
        return {"skipped": f"pip download of the root agent's wheels failed: {fetch.stderr[-300:]}"}
    script = BENCH / "pyodide" / "chain.mjs"
    argv = [node, str(script), str(pyodide_dir), str(EXAMPLE), str(wheels)]
    run_process([*argv, "cold"])  # page cache, Node's compile cache
    cold, cold_internal, process, process_rss = [], [], [], []
    for _ in range(repeat):
        elapsed, _, text = run_process([*argv, "cold"])
        assert json.loads(text)["result"] == 5
        cold.append(elapsed)
        cold_internal.append(json.loads(text)["since_process_start_ms"])
    for _ in range(repeat):
        elapsed, _, text = run_process([*argv, "chain"])
        assert json.loads(text)["result"] == 42
        process.append(elapsed)
        process_rss.append(json.loads(text)["peak_rss_mb"])  # VmHWM read by node itself just before exit
    _, _, text = run_process([*argv, "warm", "200"])
    warm = json.loads(text)
    kernels = json.loads(run_process([node, str(script), str(pyodide_dir), str(KERNELS_PROJECT / "agent"), str(wheels), "kernels", "7"])[2])
    return {
        "version": version_of(pyodide_dir),
        "cold_process_ms": cold,
        "cold_since_start_ms": cold_internal,
        "chain_process_ms": process,
        "chain_process_peak_rss_mb": process_rss,
        "warm_one_ms": warm["one_agent_ms"],
        "warm_chain_ms": warm["chain_ms"],
        "rss_two_agents_mb": warm["rss_mb"],
        "kernels_ms": kernels,
    }


def version_of(package_dir: Path) -> str:
    return json.loads((package_dir / "package.json").read_text())["version"]


# --- assembling --------------------------------------------------------------------------------------


def differences(one: list[float], two: list[float]) -> list[float]:
    """Per-pair cost of the delegation: each two-agent task minus the one-agent task run next to it."""
    return [b - a for a, b in zip(one, two, strict=True)]


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def assemble(raw: dict, started: float) -> dict:
    latency = raw["latency"]
    out: dict = {"generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    out["machine"] = raw["machine"]

    no_pool = latency["no_pool"]
    out["cold_start_ms"] = {**summary(no_pool["one"]), "holds": "no warm pool: instantiate + warm-up + run of one agent, on the critical path"}
    out["cold_start_phases_ms"] = {key: summary(values) for key, values in raw["cold_phases"].items()}

    paced, b2b = latency["paced"], latency["back_to_back"]
    out["hop_ms"] = {**summary(differences(paced["one"], paced["two"])), "holds": "paced (warm pool refilled between tasks)"}
    out["chain_ms"] = {**summary(paced["two"]), "holds": "paced (warm pool refilled between tasks)"}
    out["one_agent_ms"] = {**summary(paced["one"]), "holds": "paced (warm pool refilled between tasks)"}
    out["back_to_back"] = {
        "one_agent_ms": summary(b2b["one"]),
        "chain_ms": summary(b2b["two"]),
        "hop_ms": summary(differences(b2b["one"], b2b["two"])),
    }
    out["no_pool"] = {
        "one_agent_ms": summary(no_pool["one"]),
        "chain_ms": summary(no_pool["two"]),
        "hop_ms": summary(differences(no_pool["one"], no_pool["two"])),
    }

    wall, rss = raw["cli_run"]
    out["cli_run_ms"] = {**summary(wall), "peak_rss_mb": summary(rss, 1)}
    out["ray"] = raw.get("ray", {"skipped": "not measured"})

    by_mode = {
        mode: {key: {c: summary(raw["throughput"][mode][c][key], 3 if key == "first_s" else 1) for c in map(str, CONCURRENCY)}
               for key in ("steady", "rate", "first_s", "cpu_ms", "steady_cpu_ms")}
        for mode in THROUGHPUT_MODES
    }
    mode, best = max(((m, c) for m in THROUGHPUT_MODES for c in map(str, CONCURRENCY)), key=lambda mc: by_mode[mc[0]]["steady"][mc[1]]["median"])
    out["chains_per_s"] = {**by_mode[mode]["steady"][best], "mode": mode, "concurrency": int(best), "by_concurrency": by_mode[mode]["steady"],
                           "holds": "the best mode and concurrency, steady (from the fifth of the chains done to the last); back to back",
                           "cpu_ms_per_chain": by_mode[mode]["steady_cpu_ms"], "by_mode": by_mode,
                           "processes_over_threads": {c: round(by_mode["processes"]["steady"][c]["median"] / by_mode["threads"]["steady"][c]["median"], 2)
                                                      for c in map(str, CONCURRENCY)}}

    memory = {count: summary([p["per_instance_mb"] for p in probes]) for count, probes in raw["memory"].items()}
    out["mem_per_instance_mb"] = {
        **memory[str(max(LIVE_INSTANCES))], "live": max(LIVE_INSTANCES), "by_live_instances": memory,
        "rss_mb": {count: summary([p["held_mb"] for p in probes], 1) for count, probes in raw["memory"].items()},
        "baseline_rss_mb": summary([p["baseline_mb"] for probes in raw["memory"].values() for p in probes], 1),
        "holds": "the 256-live figure (RSS growth / 256) of the root agent, prepared and warmed",
    }

    cpu = raw["cpu"]
    native_versions = list(cpu["native"])
    host = native_versions[0]
    ratios, per_kernel = [], {}
    for kernel in KERNELS:
        guest = statistics.median(cpu["guest"][kernel])
        entry = {"guest_ms": summary(cpu["guest"][kernel]), "guest_hop_ms": summary(cpu["guest_hop"][kernel])}
        for python_version in native_versions:
            native = statistics.median(cpu["native"][python_version][kernel])
            entry[f"native_{python_version}_ms"] = summary(cpu["native"][python_version][kernel])
            entry[f"ratio_vs_{python_version}"] = round(guest / native, 3)
        per_kernel[kernel] = entry
        ratios.append([g / n for g, n in zip(cpu["guest"][kernel], cpu["native"][host][kernel], strict=True)])
    geo = [geometric_mean([r[i] for r in ratios]) for i in range(len(ratios[0]))]
    out["cpu_ratio_vs_native"] = {
        **summary(geo), "native_python": host, "kernels": per_kernel,
        "geomean_vs": {v: round(geometric_mean([per_kernel[k][f"ratio_vs_{v}"] for k in KERNELS]), 3) for v in native_versions},
        "holds": f"geometric mean over the kernels of guest time (timed inside the guest) / native CPython {host}; "
                 "min/max over the repetitions (guest runs and native runs in a clean subprocess alternate)",
    }

    out["build_cold_s"] = {**summary(raw["build_cold"]), "holds": "wasm-agents build as a process, empty XDG_CACHE_HOME (wheels, pip cache, components cold)"} if raw["build_cold"] else {"skipped": "--no-cold-build"}
    in_process, as_process = raw["build_nochange"]
    out["build_nochange_s"] = {**summary(in_process), "holds": "build() in-process", "as_process_s": summary(as_process)}

    native = raw["native_hop"]
    out["baseline_native"] = {
        "one_agent_ms": summary(native["one"], 4),
        "chain_ms": summary(native["two"], 4),
        "hop_ms": summary(differences(native["one"], native["two"]), 4),
    }

    pyodide = raw["pyodide"]
    if "skipped" in pyodide:
        out["pyodide"] = pyodide
    else:
        out["pyodide_cold_start_ms"] = {**summary(pyodide["cold_process_ms"]), "holds": "node process start to the root agent's first result (one add task), whole process",
                                        "since_process_start_ms": summary(pyodide["cold_since_start_ms"])}
        out["pyodide_chain_ms"] = {**summary(pyodide["warm_chain_ms"]), "holds": "warm: both interpreters loaded and reused (no fresh interpreter per invocation)"}
        out["pyodide_one_agent_ms"] = summary(pyodide["warm_one_ms"])
        out["pyodide_hop_ms"] = summary(differences(pyodide["warm_one_ms"], pyodide["warm_chain_ms"]))
        out["pyodide_process_ms"] = {**summary(pyodide["chain_process_ms"]), "holds": "node process running the multiply chain, start to exit"}
        out["pyodide_rss_mb"] = {**summary(pyodide["chain_process_peak_rss_mb"], 1), "holds": "peak RSS of the node process running the chain",
                                 "two_agents_loaded_rss_mb": round(pyodide["rss_two_agents_mb"], 1)}
        out["pyodide_version"] = pyodide["version"]
        host = out["cpu_ratio_vs_native"]["native_python"]
        theirs = {k: round(statistics.median(pyodide["kernels_ms"][k]) / statistics.median(raw["cpu"]["native"][host][k]), 3) for k in KERNELS}
        out["pyodide_cpu_ratio_vs_native"] = {"median": round(geometric_mean(list(theirs.values())), 3), "kernels": theirs,
                                              "kernels_ms": {k: summary(v) for k, v in pyodide["kernels_ms"].items()},
                                              "holds": f"geometric mean of Pyodide time / native CPython {host}, same kernels"}
        ours = {k: round(statistics.median(raw["cpu"]["guest"][k]) / statistics.median(pyodide["kernels_ms"][k]), 3) for k in KERNELS}
        out["cpu_ratio_vs_pyodide"] = {"median": round(geometric_mean(list(ours.values())), 3), "kernels": ours,
                                       "holds": "geometric mean over the kernels of guest time / Pyodide time (medians), same kernels"}
        med = lambda key: out[key]["median"]
        out["ratios_vs_pyodide"] = {
            "cold_start": round(med("cold_start_ms") / med("pyodide_cold_start_ms"), 5),
            "chain": round(med("chain_ms") / med("pyodide_chain_ms"), 2),
            "process": round(med("cli_run_ms") / med("pyodide_process_ms"), 4),
            "rss": round(out["cli_run_ms"]["peak_rss_mb"]["median"] / med("pyodide_rss_mb"), 3),
            "cpu": round(out["cpu_ratio_vs_native"]["median"] / out["pyodide_cpu_ratio_vs_native"]["median"], 3),
            "note": "ours / theirs: below 1 means we are faster or smaller",
        }
        out["process_speedup_vs_pyodide"] = {
            "median": round(med("pyodide_process_ms") / med("cli_run_ms"), 1),
            "min": round(out["pyodide_process_ms"]["min"] / out["cli_run_ms"]["max"], 1),
            "max": round(out["pyodide_process_ms"]["max"] / out["cli_run_ms"]["min"], 1),
            "holds": "Pyodide process / `wasm-agents run` process, same chain",
        }
    out["ratios_vs_native"] = {
        "one_agent": round(out["one_agent_ms"]["median"] / out["baseline_native"]["one_agent_ms"]["median"], 1),
        "chain": round(out["chain_ms"]["median"] / out["baseline_native"]["chain_ms"]["median"], 1),
        "hop": round(out["hop_ms"]["median"] / max(out["baseline_native"]["hop_ms"]["median"], 1e-4), 1),
        "cpu": out["cpu_ratio_vs_native"]["median"],
        "note": "ours / native in-process CPython",
    }
    out["targets"] = {}
    for key, (comparison, target) in TARGETS.items():
        if key not in out or "median" not in out[key]:
            continue
        value = out[key]["median"]
        met = value <= target if comparison == "<=" else value >= target
        out["targets"][key] = {"target": f"{comparison} {target:g}", "median": value, "met": met}
    out["samples"] = {
        "one_agent_paced_ms": paced["one"], "chain_paced_ms": paced["two"],
        "one_agent_back_to_back_ms": b2b["one"], "chain_back_to_back_ms": b2b["two"],
        "one_agent_no_pool_ms": no_pool["one"], "chain_no_pool_ms": no_pool["two"],
        "hop_paced_ms": differences(paced["one"], paced["two"]),
        "hop_back_to_back_ms": differences(b2b["one"], b2b["two"]),
        "cli_run_ms": wall, "native_chain_ms": native["two"],
        "cpu_guest_ms": cpu["guest"], "cpu_native_ms": cpu["native"],
        "throughput": raw["throughput"], "memory": raw["memory"],
        "build_cold_s": raw["build_cold"], "build_nochange_s": in_process,
        **({} if "skipped" in pyodide else {
            "pyodide_cold_process_ms": pyodide["cold_process_ms"], "pyodide_chain_ms": pyodide["warm_chain_ms"],
            "pyodide_process_ms": pyodide["chain_process_ms"]}),
    }
    out["bench_runtime_s"] = round(time.perf_counter() - started, 1)
    return out


def table(out: dict) -> str:
    rows = [("figure", "median", "min", "max", "target", "")]

    def row(label: str, entry: dict | None, key: str | None = None, unit: str = "") -> None:
        if not entry or "median" not in entry:
            return
        target = out["targets"].get(key, {}) if key else {}
        mark = "" if not target else ("met" if target["met"] else "MISSED")
        rows.append((label, f"{entry['median']:g}{unit}", f"{entry['min']:g}", f"{entry['max']:g}", target.get("target", ""), mark))

    row("cold start, no pool (ms)", out["cold_start_ms"], "cold_start_ms")
    row("one agent, paced, warm pool (ms)", out["one_agent_ms"])
    row("one agent, back to back (ms)", out["back_to_back"]["one_agent_ms"])
    row("hop, paced (ms)", out["hop_ms"], "hop_ms")
    row("hop, back to back (ms)", out["back_to_back"]["hop_ms"])
    row("hop, no pool (ms)", out["no_pool"]["hop_ms"])
    row("chain, paced (ms)", out["chain_ms"])
    row("chain, back to back (ms)", out["back_to_back"]["chain_ms"])
    row("wasm-agents run process (ms)", out["cli_run_ms"])
    for mode, figures in out["chains_per_s"]["by_mode"].items():
        for c, entry in figures["steady"].items():
            key = mode == out["chains_per_s"]["mode"] and int(c) == out["chains_per_s"]["concurrency"]
            row(f"chains/s steady, {mode}, concurrency {c}", entry, "chains_per_s" if key else None)
    for c, ratio in out["chains_per_s"]["processes_over_threads"].items():
        rows.append((f"chains/s steady, processes / threads, concurrency {c}", f"{ratio:g}", "", "", "", ""))
    for count, entry in out["mem_per_instance_mb"]["by_live_instances"].items():
        row(f"MiB per live instance, {count} live", entry, "mem_per_instance_mb" if int(count) == max(LIVE_INSTANCES) else None)
    for kernel, entry in out["cpu_ratio_vs_native"]["kernels"].items():
        rows.append((f"cpu {kernel}: guest / native {out['cpu_ratio_vs_native']['native_python']}",
                     f"{entry['ratio_vs_' + out['cpu_ratio_vs_native']['native_python']]:g}", "", "", "", ""))
    row("cpu ratio, geometric mean", out["cpu_ratio_vs_native"], "cpu_ratio_vs_native")
    row("build cold (s)", out.get("build_cold_s"))
    row("build, nothing changed (s)", out["build_nochange_s"], "build_nochange_s")
    row("native Python: chain (ms)", out["baseline_native"]["chain_ms"])
    row("native Python: hop (ms)", out["baseline_native"]["hop_ms"])
    if "pyodide_cold_start_ms" in out:
        row("Pyodide: cold start, process (ms)", out["pyodide_cold_start_ms"])
        row("Pyodide: chain, warm (ms)", out["pyodide_chain_ms"])
        row("Pyodide: chain as a process (ms)", out["pyodide_process_ms"])
        row("Pyodide: peak RSS (MiB)", out["pyodide_rss_mb"])
        rows.append(("Pyodide: CPU ratio vs native, geomean", f"{out['pyodide_cpu_ratio_vs_native']['median']:g}", "", "", "", ""))
        for kernel, ratio in out["cpu_ratio_vs_pyodide"]["kernels"].items():
            rows.append((f"cpu {kernel}: guest / Pyodide", f"{ratio:g}", "", "", "", ""))
        target = out["targets"]["cpu_ratio_vs_pyodide"]
        rows.append(("cpu ratio vs Pyodide, geometric mean", f"{target['median']:g}", "", "", target["target"], "met" if target["met"] else "MISSED"))
        row("process speed-up vs Pyodide (x)", out["process_speedup_vs_pyodide"], "process_speedup_vs_pyodide")
    else:
        rows.append(("Pyodide baseline", "skipped", "", "", "", out.get("pyodide", {}).get("skipped", "")))
    for workers, entry in out["ray"].items():
        if isinstance(entry, dict):
            rows.append((f"Ray, {workers} worker(s): chains/s steady (first line s)",
                         f"{entry['steady_chains_per_s']:g}", f"({entry['first_line_s']:g} s)", "", "", ""))
    if "skipped" in out["ray"]:
        rows.append(("Ray backend", "skipped", "", "", "", out["ray"]["skipped"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run; still >= 5 each)")
    parser.add_argument("--no-cold-build", action="store_true", help="skip the cold builds (~20 s each)")
    parser.add_argument("--no-pyodide", action="store_true", help="skip the Pyodide baseline")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    repeat = 5
    latency_repeat = 50 if args.quick else 200
    raw: dict = {"machine": machine()}
    work = Path(tempfile.mkdtemp(prefix="wasm-agents-bench-"))
    try:
        project = Path(shutil.copytree(EXAMPLE, work / "quickstart", ignore=shutil.ignore_patterns("dist")))
        kernels = Path(shutil.copytree(KERNELS_PROJECT, work / "kernels", ignore=shutil.ignore_patterns("dist")))
        log("building the example and the kernels project (cached by content after the first time)")
        build(project)
        build(kernels)
        dist = project / "dist"
        log("compiling both dists for this host (cached after the first time)")
        Runner(dist, warm=0).close()
        Runner(kernels / "dist", warm=0).close()

        log("build, nothing changed")
        raw["build_nochange"] = bench_build_nochange(project, repeat)
        log("latency: paced, back to back, no pool")
        raw["latency"] = bench_latency(dist, latency_repeat)
        raw["cold_phases"] = bench_cold_phases(dist, latency_repeat)
        log("native Python baseline for the hop")
        raw["native_hop"] = bench_native_hop(latency_repeat)
        log("throughput")
        raw["throughput"] = bench_throughput(dist, repeat, 100 if args.quick else 200)
        log("wasm-agents run as a process")
        raw["cli_run"] = bench_cli_run(dist, 10)
        log("Ray backend: 1 and 2 workers (child process)")
        raw["ray"] = bench_ray(dist, 200 if args.quick else 400)
        log("memory per live instance")
        raw["memory"] = bench_memory(dist, repeat)
        log("CPU kernels: guest and native")
        raw["cpu"] = bench_cpu(kernels / "dist", 7)
        if args.no_pyodide:
            raw["pyodide"] = {"skipped": "--no-pyodide"}
        else:
            log("the original design: Pyodide in Node.js")
            raw["pyodide"] = bench_pyodide(repeat, work)
        if args.no_cold_build:
            raw["build_cold"] = []
        else:
            log("cold builds (empty cache, wheels from PyPI)")
            raw["build_cold"] = bench_build_cold(EXAMPLE, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = assemble(raw, started)
    args.output.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=1)
    (args.output / "latest.json").write_text(text)
    dated = args.output / f"{datetime.date.today().isoformat()}.json"
    dated.write_text(text)
    print(table(out))
    print(f"\nwrote {args.output / 'latest.json'} and {dated} in {out['bench_runtime_s']} s")
    if not args.no_plots:
        try:
            import plots
        except ImportError as error:
            print(f"plots skipped ({error}): pip install matplotlib", file=sys.stderr)
        else:
            for path in plots.draw(out, ROOT / "docs" / "img"):
                print(f"drew {path}")


if __name__ == "__main__":
    main()
