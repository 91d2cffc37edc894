"""The paced hop and the no-pool cold start, this checkout against another revision, interleaved in one run.

  python bench/hop_ab.py [--against REV] [--rounds N] [--pairs N]

Exports `src/` of REV (default HEAD) to a temp dir, builds examples/quickstart with each side's code (so a change
to the guest harness is measured too), then alternates rounds, each a fresh process of one side: paced hop =
two-agent chain − one-agent chain (median of the per-pair differences, warm pool of 2, 10 ms between tasks), cold
start = one-agent chain with no pool. Prints the medians over rounds per side, and the per-round figures.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ADD = {"op": "add", "a": 2, "b": 3}
MULTIPLY = {"op": "multiply", "a": 6, "b": 7}


def measure(dist: Path, pairs: int) -> dict:
    """One side's round, in this process: paced one-agent, two-agent and no-pool figures (ms)."""
    from wasm_agents import Runner

    one, two, cold = [], [], []
    with Runner(dist) as runner:
        for _ in range(20):
            runner.run(MULTIPLY)
        for _ in range(pairs):
            for task, samples in ((ADD, one), (MULTIPLY, two)):
                time.sleep(0.01)
                start = time.perf_counter()
                assert runner.run(task).ok
                samples.append((time.perf_counter() - start) * 1000)
    with Runner(dist, warm=0) as runner:
        for _ in range(5):
            runner.run(ADD)
        for _ in range(pairs):
            time.sleep(0.01)
            start = time.perf_counter()
            assert runner.run(ADD).ok
            cold.append((time.perf_counter() - start) * 1000)
    hops = [b - a for a, b in zip(one, two, strict=True)]
    return {
        "one_agent_ms": statistics.median(one),
        "chain_ms": statistics.median(two),
        "hop_ms": statistics.median(hops),
        "cold_start_ms": statistics.median(cold),
    }


def main() -> None:
    """Build once, export the other revision, alternate rounds, print medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", default="HEAD")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        base = Path(work) / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.against, "src"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        sides = {args.against: base / "src", "this checkout": ROOT / "src"}
        dists = {}
        for number, (side, source) in enumerate(sides.items()):
            project = Path(work) / f"side{number}" / "quickstart"
            shutil.copytree(ROOT / "examples" / "quickstart", project, ignore=shutil.ignore_patterns("dist"))
            built = f"from pathlib import Path; from wasm_agents import build; build(Path({str(project)!r}))"
            subprocess.run([sys.executable, "-c", built], env={**os.environ, "PYTHONPATH": str(source)}, check=True, capture_output=True)
            dists[side] = project / "dist"
        figures: dict[str, list[dict]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            for side in (list(sides) if round_ % 2 == 0 else list(sides)[::-1]):
                code = f"import json, sys; sys.path.insert(0, {str(BENCH)!r}); import hop_ab; print(json.dumps(hop_ab.measure(__import__('pathlib').Path({str(dists[side])!r}), {args.pairs})))"
                out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(sides[side])},
                                     check=True, capture_output=True, text=True).stdout
                figures[side].append(json.loads(out.splitlines()[-1]))
                print(side, {k: round(v, 3) for k, v in figures[side][-1].items()}, flush=True)
        for side, rounds in figures.items():
            print(f"{side:>16}:", {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]})


if __name__ == "__main__":
    main()
