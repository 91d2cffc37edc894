"""Run the kernels agent's code natively.

`python native_kernels.py KERNEL REPEAT` prints one JSON list of ms; with a third argument `cpu`, one JSON
object: the same list as "ms" and the thread's CPU time of each run as "cpu_ms".
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "projects" / "kernels" / "agent"))
from main import run_kernel  # the agent's own module, from the path set above


def timed(name: str) -> tuple[float, float]:
    """Run kernel `name` once: its own time in ms and this thread's CPU time for it in ms."""
    start = time.thread_time()
    ms = run_kernel(name)["ms"]
    return ms, (time.thread_time() - start) * 1000


if __name__ == "__main__":
    name, repeat = sys.argv[1], int(sys.argv[2])
    run_kernel(name)  # warm-up, as the guest side gets one
    runs = [timed(name) for _ in range(repeat)]
    if sys.argv[3:] == ["cpu"]:
        print(json.dumps({"ms": [ms for ms, _ in runs], "cpu_ms": [cpu for _, cpu in runs]}))
    else:
        print(json.dumps([ms for ms, _ in runs]))
