"""Where the time goes, for the targets `make bench` reports as missed. Not part of `make bench`.

  python bench/profile.py layers      # a hop and a task taken apart layer by layer (paced, warm pool)
  python bench/profile.py throughput  # py-spy (native frames) over back-to-back chains at --concurrency 2
  python bench/profile.py cpu         # the kernels with epoch interruption off, on (default) and fuel on
  python bench/profile.py scaling     # fresh sandboxes/s on 1 thread, 2 threads, 2 processes: what serialises
  python bench/profile.py gc          # chains/s with the cyclic GC as is, frozen, off; GC time per chain
  python bench/profile.py hop         # py-spy (native, idle frames) over paced chains: the critical path
  python bench/profile.py timeline    # the critical path of a paced chain and of a no-pool task, step by step

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
from pathlib import Path

from wasm_agents import Runner, build
from wasm_agents.sandbox.invocation import Invocation, invoke

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
        make = runner.maker("agent").make
        config = json.dumps({"task": ADD, "agent": "agent", "run_id": "x", "settings": {}})
        boxes = [make() for _ in range(300)]
        it = iter(boxes)

        def direct() -> None:  # the guest's run call on a prepared sandbox: no threads, no orchestrator
            box = next(it)
            box.call(config)

        out["guest_run_call_ms"] = median_ms(direct, 300, 0.001)
        for box in boxes:
            box.close()
        boxes = [make() for _ in range(300)]
        it = iter(boxes)
        quiet = Invocation(spec.limits, host_call=lambda c, p: (False, ""), on_log=lambda *a: None, on_output=lambda *a: None)
        out["invoke_ms"] = median_ms(lambda: invoke(lambda: next(it), quiet, config, time.monotonic() + 30), 300, 0.001)
        # The delegating task on the root alone: its delegate() answered at once by a stub host call.
        stubbed = Invocation(spec.limits, host_call=lambda c, p: (True, "42"), on_log=lambda *a: None, on_output=lambda *a: None)
        multiply_config = json.dumps({"task": MULTIPLY, "agent": "agent", "run_id": "x", "settings": {}})
        boxes = [make() for _ in range(300)]
        it = iter(boxes)
        out["root_multiply_stubbed_invoke_ms"] = median_ms(lambda: invoke(lambda: next(it), stubbed, multiply_config, time.monotonic() + 30), 300, 0.001)
        mmake = runner.maker("multiplier").make
        boxes = [mmake() for _ in range(300)]
        it = iter(boxes)
        mconfig = json.dumps({"task": MULTIPLY, "agent": "multiplier", "run_id": "x", "settings": {}})
        out["multiplier_invoke_ms"] = median_ms(lambda: invoke(lambda: next(it), quiet, mconfig, time.monotonic() + 30), 300, 0.001)
        # First touch: the same call twice on one instance (never done in production; here to split page faults off).
        first, second = [], []
        for _ in range(200):
            box = make()
            box.output.to = None
            from wasm_agents.sandbox.engine import current
            current.invocation = stubbed
            stubbed.turn.take()  # host_call gives the turn away and takes it back
            for bucket in (first, second):
                start = time.perf_counter()
                box.call(multiply_config)
                bucket.append((time.perf_counter() - start) * 1000)
            current.invocation = None
            stubbed.turn.give_back()
            box.close()
            time.sleep(0.001)
        out["root_multiply_call_fresh_instance_ms"] = round(statistics.median(first), 3)
        out["root_multiply_call_second_time_ms"] = round(statistics.median(second), 3)
        out["runner_one_agent_ms"] = median_ms(lambda: runner.run(ADD))
        out["runner_chain_ms"] = median_ms(lambda: runner.run(MULTIPLY))
        # The thread handoff alone: a job that does nothing, through the same Event-based wait.
        def handoff() -> None:
            done = threading.Event()
            runner.guests.workers.submit(done.set)
            done.wait()

        out["worker_handoff_ms"] = median_ms(handoff, 300, 0.001)
    out["hop_ms"] = round(out["runner_chain_ms"] - out["runner_one_agent_ms"], 3)
    out["orchestrator_overhead_ms"] = round(out["runner_one_agent_ms"] - out["invoke_ms"], 3)
    out["invoke_overhead_ms"] = round(out["invoke_ms"] - out["guest_run_call_ms"], 3)
    return out


def timeline(dist: Path) -> dict:
    """A chain's critical path step by step: the median time between consecutive marks, paced two-agent chains on a
    warm pool, and paced one-agent chains with no pool (marks: chain, orchestrator, invoke, pool take, guest call)."""
    import wasm_agents.orchestrator as orchestrator
    from wasm_agents.sandbox import invocation as invocation_module
    from wasm_agents.sandbox.pool import WarmPool

    marks: list[tuple[str, float]] = []
    mark = lambda name: marks.append((name, time.perf_counter()))

    def around(name: str, function):
        def wrapped(*args):
            mark(name(*args))
            try:
                return function(*args)
            finally:
                mark(name(*args) + " returns")
        return wrapped

    take = WarmPool.take

    def traced_take(pool: WarmPool, agent: str):
        mark(f"take {agent}")
        sandbox = take(pool, agent)
        sandbox.call = around(lambda _: f"guest call {agent}", sandbox.call)
        return sandbox

    saved = (WarmPool.take, orchestrator.invoke, invocation_module.Invocation.host_call, orchestrator.Runner._invoke)
    WarmPool.take = traced_take
    orchestrator.invoke = around(lambda *_: "invoke", orchestrator.invoke)
    invocation_module.Invocation.host_call = around(lambda *_: "host call", invocation_module.Invocation.host_call)
    orchestrator.Runner._invoke = around(lambda _, __, agent, *___: f"Runner._invoke {agent}", orchestrator.Runner._invoke)
    out = {}
    try:
        for label, warm, task in (("paced chain, warm pool", 2, MULTIPLY), ("one agent, no pool", 0, ADD)):
            gaps: dict[str, list[float]] = collections.defaultdict(list)
            with Runner(dist, warm=warm) as runner:
                for _ in range(20):
                    runner.run(task)
                for _ in range(300):
                    time.sleep(0.01)
                    marks.clear()
                    mark("run")
                    runner.run(task)
                    mark("run returns")
                    for (before, at), (after, then) in zip(marks, marks[1:]):
                        gaps[f"{before} -> {after}"].append((then - at) * 1000)
            out[label] = {step: round(statistics.median(ms), 3) for step, ms in gaps.items()}
    finally:
        WarmPool.take, orchestrator.invoke, invocation_module.Invocation.host_call, orchestrator.Runner._invoke = saved
    return out


def pyspy(target: str, dist: Path, seconds: int, extra: list[str]) -> dict:
    """Run the workload `target` of this script in a child; once it is set up, record it with py-spy."""
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    child = subprocess.Popen([sys.executable, __file__, f"_{target}", str(dist), str(seconds + 3)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run([spy, "record", "--native", "--threads", "--rate", "500", "--format", "raw", "-o", str(raw),
                    "--duration", str(seconds), "--pid", str(child.pid), *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    child.wait()
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
    share = lambda c: [(name, round(100 * n / total, 1)) for name, n in c.most_common(60)]
    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(leaf), "raw": str(raw)}


def _throughput(dist: Path, seconds: float) -> None:
    with Runner(dist) as runner, ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(runner.run, [MULTIPLY] * 100))
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            list(pool.map(runner.run, [MULTIPLY] * 100))


def _hop(dist: Path, seconds: float) -> None:
    with Runner(dist) as runner:
        for _ in range(50):
            runner.run(MULTIPLY)
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.005)
            runner.run(MULTIPLY)


def gc_cost(dist: Path) -> dict:
    """Chains per second at --concurrency 2 with the cyclic GC as is, frozen after start-up, and off; time spent in it."""
    import gc

    spent = {"s": 0.0, "collections": collections.Counter()}
    started = {}

    def watch(phase: str, info: dict) -> None:
        if phase == "start":
            started[threading.get_ident()] = time.perf_counter()
        else:
            spent["s"] += time.perf_counter() - started.pop(threading.get_ident(), time.perf_counter())
            spent["collections"][info["generation"]] += 1

    gc.callbacks.append(watch)
    out = {}
    chains = 600
    with Runner(dist) as runner, ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(runner.run, [MULTIPLY] * 100))
        for label in ("gc as is", "gc.freeze() after start-up", "gc disabled", "gc as is (again)"):
            gc.enable()
            gc.unfreeze()
            if label.startswith("gc.freeze"):
                gc.collect()
                gc.freeze()
            if label == "gc disabled":
                gc.disable()
            spent["s"], spent["collections"] = 0.0, collections.Counter()
            time.sleep(0.2)
            rates = []
            for _ in range(3):
                start = time.perf_counter()
                list(pool.map(runner.run, [MULTIPLY] * chains))
                rates.append(chains / (time.perf_counter() - start))
            out[label] = {"chains_per_s": round(statistics.median(rates), 1),
                          "gc_ms_per_chain": round(spent["s"] * 1000 / (3 * chains), 3),
                          "collections_by_generation": dict(spent["collections"])}
        gc.enable()
        gc.unfreeze()
        out["tracked_objects"] = len(gc.get_objects())
    return out


def _make_sandboxes(dist: Path, seconds: float, threads: int) -> float:
    """make() + run + close() of the root agent in a loop on `threads` threads; return sandboxes per second."""
    config = json.dumps({"task": ADD, "agent": "agent", "run_id": "x", "settings": {}})
    with Runner(dist, warm=0) as runner:
        make = runner.maker("agent").make
        make().close()
        count = [0] * threads

        def loop(index: int) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                box = make()
                box.call(config)
                box.close()
                count[index] += 1

        workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return sum(count) / seconds


def scaling(dist: Path) -> dict:
    """Fresh sandboxes per second (make, run one task, drop): 1 thread, 2 threads, 2 processes; and CPU per sandbox."""
    out = {}
    for threads in (1, 2):
        cpu_start = os.times()
        rate = _make_sandboxes(dist, 5, threads)
        cpu_end = os.times()
        cpu_s = cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system
        out[f"{threads} thread(s) in one process"] = {"sandboxes_per_s": round(rate, 1),
                                                     "cpu_ms_per_sandbox": round(cpu_s * 1000 / (rate * 5), 2),
                                                     "sys_share": round((cpu_end.system - cpu_start.system) / cpu_s, 2)}
    children = [subprocess.Popen([sys.executable, __file__, "_sandboxes", str(dist), "5"], stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    out["2 processes, 1 thread each"] = {"sandboxes_per_s": round(sum(float(c.communicate()[0]) for c in children), 1)}
    return out


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
    if what == "_sandboxes":
        print(_make_sandboxes(Path(sys.argv[2]), float(sys.argv[3]), 1))
        return
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
                result = {"on_cpu": pyspy("throughput", dist, 15, []), "holding_gil": pyspy("throughput", dist, 15, ["--gil"])}
            elif what == "timeline":
                result = timeline(dist)
            elif what == "scaling":
                result = scaling(dist)
            elif what == "gc":
                result = gc_cost(dist)
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
