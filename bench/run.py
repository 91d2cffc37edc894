"""Start-up, hop and throughput figures for the example chain, with in-process Python as the baseline.

Prints one JSON object; each figure is the median of its repetitions, with min and max.
Usage: python bench/run.py [--repeat N]
"""

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

from wasm_agents.build import build
from wasm_agents.orchestrator import Runner

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart"
ADD = {"op": "add", "a": 2, "b": 3}
MULTIPLY = {"op": "multiply", "a": 6, "b": 7}


def summary(samples: list[float]) -> dict[str, float]:
    """Median, min and max, rounded."""
    return {"median": round(statistics.median(samples), 3), "min": round(min(samples), 3), "max": round(max(samples), 3)}


def timed_ms(function, repeat: int) -> list[float]:
    """Call `function` `repeat` times and return each call's duration in ms."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def native_chain_ms(repeat: int) -> list[float]:
    """The same two agents called in-process by plain Python: the floor any sandbox is compared with."""
    sdk = type(sys)("wasm_agents_sdk")
    sdk.log = lambda *args, **kwargs: None
    sys.modules["wasm_agents_sdk"] = sdk
    sys.path[:0] = [str(EXAMPLE / "agent-multiplier")]
    import main as multiplier  # the example's own module, run natively

    def chain() -> None:  # a hop as the host does it: encode the task, run the agent, decode its result
        json.loads(json.dumps(multiplier.main({"task": json.loads(json.dumps(MULTIPLY))}).run()))

    return timed_ms(chain, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wasm-agents-bench-"))
    try:
        project = Path(shutil.copytree(EXAMPLE, work / "quickstart", ignore=shutil.ignore_patterns("dist")))
        build_nochange = timed_ms(lambda: build(project), 3)  # the first may be cold; the others hit the cache
        with Runner(project / "dist") as runner:
            for _ in range(20):  # warm-up: page cache, first-call faults
                runner.run(MULTIPLY)
            # Paced: a gap between tasks lets the warm pool refill, as for interactive use.
            paced_one = timed_ms(lambda: (time.sleep(0.01), runner.run(ADD)), args.repeat)
            paced_two = timed_ms(lambda: (time.sleep(0.01), runner.run(MULTIPLY)), args.repeat)
            # Back to back: the pool drains, and every hop pays for making its fresh sandbox.
            one_agent = timed_ms(lambda: runner.run(ADD), args.repeat)
            two_agents = timed_ms(lambda: runner.run(MULTIPLY), args.repeat)
            throughput = {}
            for concurrency in (1, 2, 4, 8):
                count = 100 * concurrency
                with ThreadPoolExecutor(max_workers=concurrency) as pool:
                    start = time.perf_counter()
                    results = list(pool.map(runner.run, [MULTIPLY] * count))
                    elapsed = time.perf_counter() - start
                assert all(r.result == 42 for r in results)
                throughput[str(concurrency)] = round(count / elapsed, 1)
        native = native_chain_ms(args.repeat)
        hop = [b - a for a, b in zip(sorted(one_agent), sorted(two_agents), strict=True)]
        paced_hop = [b - a for a, b in zip(sorted(paced_one), sorted(paced_two), strict=True)]
        paced = {"cold_start_ms": summary([ms - 10 for ms in paced_one]), "chain_ms": summary([ms - 10 for ms in paced_two]),
                 "hop_ms": summary(paced_hop)}
        figures = {
            "cold_start_ms": summary(one_agent),
            "chain_ms": summary(two_agents),
            "hop_ms": summary(hop),
            "paced": paced,
            "chains_per_s": {"best": max(throughput.values()), "by_concurrency": throughput},
            "build_nochange_s": summary([ms / 1000 for ms in build_nochange[1:]]),
            "baseline_native_chain_ms": summary(native),
            "ratio_chain_vs_native": round(statistics.median(two_agents) / statistics.median(native), 1),
            "machine": {
                "cpu": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "wasmtime": version("wasmtime"),
                "componentize-py": version("componentize-py"),
            },
        }
        print(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
