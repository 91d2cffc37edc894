"""CPU kernels for the guest/native ratio: the task picks one; run() returns the kernel's own time.

The same module runs natively (bench/native_kernels.py) so both sides time exactly the same code.
"""

import json
import time

SIZES = {"fib": 27, "loop": 1_000_000, "json": 10}


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def loop(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def json_round_trip(times):
    document = {
        "items": [
            {"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b", "c"], "ok": i % 2 == 0, "none": None}
            for i in range(2000)
        ]
    }
    size = 0
    for _ in range(times):
        size += len(json.loads(json.dumps(document))["items"])
    return size


KERNELS = {"fib": fib, "loop": loop, "json": json_round_trip}


def run_kernel(name, size=None):
    """Run kernel `name` once; return its answer and how long it took in ms."""
    start = time.perf_counter()
    answer = KERNELS[name](SIZES[name] if size is None else size)
    return {"answer": answer, "ms": (time.perf_counter() - start) * 1000}


class Kernel:
    def __init__(self, task):
        self.task = task

    def run(self):
        return run_kernel(self.task["kernel"], self.task.get("size"))


def main(config):
    return Kernel(config["task"])
