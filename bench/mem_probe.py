"""Hold N prepared sandboxes of one agent at once and report the process RSS growth.

Usage: python mem_probe.py DIST AGENT N  ->  prints {"n", "baseline_mb", "held_mb", "per_instance_mb"}
Run in a fresh process per measurement so earlier allocations do not blur the figure.
"""

import gc
import json
import sys
from pathlib import Path

from wasm_agents import Runner


def rss_mb() -> float:
    """VmRSS of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    dist, agent, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with Runner(dist, warm=0) as runner:
        make = runner.maker(agent).make
        make().close()  # first use: linker, lazily made host state; not per instance
        gc.collect()
        baseline = rss_mb()
        held = [make() for _ in range(count)]
        after = rss_mb()
        print(json.dumps({"n": count, "baseline_mb": baseline, "held_mb": after,
                          "per_instance_mb": (after - baseline) / count}))
        for sandbox in held:
            sandbox.close()


if __name__ == "__main__":
    main()
