"""Chains per second on a local Ray with 1 and 2 worker actors; run in a child process (see tests/test_ray.py).

Usage: python bench/ray_throughput.py DIST [CHAINS]  ->  one JSON object on stdout.
"""

import json
import sys
import time
from pathlib import Path

import ray

from wasm_agents import Ray, run_tasks

TASK = {"op": "multiply", "a": 6, "b": 7}


def main() -> None:
    dist, chains = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 400
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    out = {}
    for workers in (1, 2):
        start = time.perf_counter()
        first = None
        for count, line in enumerate(run_tasks(dist, [TASK] * chains, Ray(workers=workers))):
            assert line["result"] == 42, line
            if count == 0:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        out[str(workers)] = {
            "first_line_s": round(first, 3),
            "chains_per_s": round(chains / total, 1),
            "steady_chains_per_s": round((chains - 1) / (total - first), 1),
        }
    ray.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
