"""Where the time goes, for the targets `make bench` reports as missed. Not part of `make bench`.

  python bench/profile.py layers      # a hop and a task taken apart layer by layer (paced, warm pool)
  python bench/profile.py throughput  # py-spy (native frames) over back-to-back chains at --concurrency 2
  python bench/profile.py cpu         # the kernels with epoch interruption off, on (default) and fuel on
  python bench/profile.py hop         # py-spy (native, idle frames) over paced chains: the critical path

Needs py-spy and (for `layers`) nothing else; builds into a temp dir, caches as `make bench` does.
"""

import collections
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from wasm_agents.build import build
from wasm_agents.orchestrator import Runner
from wasm_agents.sandbox.invocation import Invocation, invoke
from wasm_agents.sandbox.pool import prepare

BENCH = Path(__file__).resolve().parent
EXAMPLE = BENCH.parent / "examples" / "quickstart"
ADD = {"op": "add", "a": 2, "b": 3}
MULTIPLY = {"op": "multiply", "a": 6, "b": 7}


def built(project: Path, work: Path) -> Path:
    copy = Path(shutil.copytree(project, work / project.name, ignore=shutil.ignore_patterns("dist")))
    build(copy)
    return copy / "dist"


def median_ms(function, repeat: int = 300, pace: float = 0.005) -> float:
    samples = []
    for _ in range(repeat):
        time.sleep(pace)
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 3)


def layers(dist: Path) -> dict:
    """Peel a paced task: guest call alone, + invocation worker thread, + orchestrator; then the chain."""
    out = {}
    with Runner(dist) as runner:
        for _ in range(30):
            runner.run(MULTIPLY)
        spec = runner.project.agents["agent"]
        make = partial(prepare, runner._engines, runner._components["agent"], spec.limits, runner._mounts_for(spec))
        config = json.dumps({"task": ADD, "agent": "agent", "run_id": "x", "settings": {}})
        boxes = [make() for _ in range(300)]
        it = iter(boxes)

        def direct() -> None:  # the guest's run call on a prepared sandbox: no threads, no orchestrator
            box = next(it)
            box.run(box.store, config)
            box.run.post_return(box.store)

        out["guest_run_call_ms"] = median_ms(direct, 300, 0.001)
        for box in boxes:
            box.close()
        boxes = [make() for _ in range(300)]
        it = iter(boxes)
        quiet = Invocation(spec.limits, host_call=lambda c, p: (False, ""), on_log=lambda *a: None, on_output=lambda *a: None)
        out["invoke_ms"] = median_ms(lambda: invoke(lambda: next(it), quiet, config, time.monotonic() + 30), 300, 0.001)
        out["runner_one_agent_ms"] = median_ms(lambda: runner.run(ADD))
        out["runner_chain_ms"] = median_ms(lambda: runner.run(MULTIPLY))
        # The thread handoff alone: a job that does nothing, through the same Event-based wait.
        from wasm_agents.sandbox.invocation import _workers

        def handoff() -> None:
            done = threading.Event()
            _workers.submit(done.set)
            done.wait()

        out["worker_handoff_ms"] = median_ms(handoff, 300, 0.001)
    out["hop_ms"] = round(out["runner_chain_ms"] - out["runner_one_agent_ms"], 3)
    out["orchestrator_overhead_ms"] = round(out["runner_one_agent_ms"] - out["invoke_ms"], 3)
    out["invoke_overhead_ms"] = round(out["invoke_ms"] - out["guest_run_call_ms"], 3)
    return out


def pyspy(target: str, dist: Path, seconds: int, extra: list[str]) -> list[tuple[str, float]]:
    """Record the workload `target` of this script in a child process with py-spy; summarise by frame."""
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    argv = [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record", "--native", "--threads",
            "--rate", "500", "--format", "raw", "-o", str(raw), *extra, "--",
            sys.executable, __file__, f"_{target}", str(dist), str(seconds)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return summarise(raw)


def summarise(raw: Path) -> dict:
    """Inclusive share of samples per function (each counted once per stack), and self share per leaf."""
    inclusive, leaf = collections.Counter(), collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f.split(" (")[0] for f in stack.split(";")]
        n = int(count)
        total += n
        for name in set(frames):
            inclusive[name] += n
        leaf[frames[-1]] += n
    share = lambda c: [(name, round(100 * n / total, 1)) for name, n in c.most_common(40)]  # noqa: E731
    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(leaf)}


def _throughput(dist: Path, seconds: float) -> None:
    with Runner(dist) as runner, ThreadPoolExecutor(max_workers=2) as pool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            list(pool.map(runner.run, [MULTIPLY] * 100))


def _hop(dist: Path, seconds: float) -> None:
    with Runner(dist) as runner:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.005)
            runner.run(MULTIPLY)


def cpu(kernels_dist: Path) -> dict:
    """Kernel times in the guest under three engine configurations (compiles twice: ~20-40 s, not cached)."""
    from wasmtime import Config, Engine, Store, WasiConfig
    from wasmtime.component import Component, Linker, Variant

    data = (kernels_dist / "components" / "agent.wasm").read_bytes()
    out = {}
    for label, epoch, fuel in (("epoch off, fuel off", False, False), ("epoch on (default)", True, False), ("fuel on", True, True)):
        config = Config()
        config.epoch_interruption = epoch
        config.consume_fuel = fuel
        engine = Engine(config)
        start = time.perf_counter()
        component = Component(engine, data)
        compile_s = time.perf_counter() - start
        linker = Linker(engine)
        linker.add_wasip2()
        with linker.root() as root:
            root.add_func("host-call", lambda store, name, payload: Variant("err", "{}"))
            root.add_func("log", lambda store, level, record: None)
        times = {}
        for kernel in ("fib", "loop", "json"):
            samples = []
            for _ in range(6):
                store = Store(engine)
                store.set_wasi(WasiConfig())
                if epoch:
                    store.set_epoch_deadline(10**9)
                if fuel:
                    store.set_fuel(10**15)
                run = linker.instantiate(store, component).get_func(store, "run")
                answer = run(store, json.dumps({"task": {"kernel": kernel}, "agent": "agent", "run_id": "x", "settings": {}}))
                samples.append(json.loads(answer.payload)["ms"])
            times[kernel] = round(statistics.median(samples[1:]), 2)
        out[label] = {"kernel_ms": times, "compile_s": round(compile_s, 1)}
    native = {}
    for kernel in ("fib", "loop", "json"):
        text = subprocess.run([sys.executable, str(BENCH / "native_kernels.py"), kernel, "7"], capture_output=True, text=True, check=True).stdout
        native[kernel] = round(statistics.median(json.loads(text)), 2)
    out["native"] = native
    for label, entry in list(out.items()):
        if label != "native":
            ratios = [entry["kernel_ms"][k] / native[k] for k in native]
            entry["geomean_vs_native"] = round(math.exp(statistics.fmean(map(math.log, ratios))), 3)
    return out


def main() -> None:
    what = sys.argv[1]
    if what.startswith("_"):  # a workload recorded by py-spy
        {"_throughput": _throughput, "_hop": _hop}[what](Path(sys.argv[2]), float(sys.argv[3]))
        return
    work = Path(tempfile.mkdtemp(prefix="wasm-agents-profile-"))
    try:
        if what == "cpu":
            result = cpu(built(BENCH / "projects" / "kernels", work))
        else:
            dist = built(EXAMPLE, work)
            Runner(dist, warm=0).close()
            if what == "layers":
                result = layers(dist)
            elif what == "throughput":
                result = pyspy("throughput", dist, 15, [])
            elif what == "hop":
                result = pyspy("hop", dist, 15, ["--idle"])
            else:
                raise SystemExit(__doc__)
        print(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
