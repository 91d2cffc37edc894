"""numpy and pandas kernels, timed where they run: the same module in the scientific runtime's guest and natively.

`main(task)` is the guest's entry; `python scientific_kernels.py TASK_JSON` prints the same JSON natively. Each kernel runs
once to warm up, then `task["repeat"]` times, each timed with time.perf_counter(); the answer holds each kernel's median
ms and, when `task["answers"]`, what each kernel computed, as lists.
"""

import json
import statistics
import sys
import time

import numpy as np
import pandas as pd

SIZE = 200
ROWS, KEYS = 100_000, 100


def inputs() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The kernels' inputs, built from integer arithmetic so that the guest and the host get the same bits."""
    i, j = np.indices((SIZE, SIZE))
    a = ((i * 31 + j * 17) % 101) / 101 - 0.5 + SIZE * (i == j)  # diagonally dominant: well conditioned
    b = (np.arange(SIZE) * 13 % 29) / 29
    n = np.arange(ROWS)
    frame = pd.DataFrame({"key": n * 7 % KEYS, "value": (n * 7919 % 1000) / 8})  # multiples of 1/8: exact sums
    return a, b, frame


def kernels() -> dict:
    """Each kernel as a call on its inputs."""
    a, b, frame = inputs()
    return {
        "matmul": lambda: a @ a,
        "solve": lambda: np.linalg.solve(a, b),
        "groupby": lambda: frame.groupby("key")["value"].agg(["sum", "mean"]),
    }


def answer(value) -> list | dict:
    """What a kernel computed, as JSON-ready lists."""
    if isinstance(value, pd.DataFrame):
        return {"key": value.index.tolist(), **{column: value[column].tolist() for column in value.columns}}
    return value.tolist()


def main(task: dict) -> dict:
    """Time every kernel: its median ms over `task["repeat"]` runs after one warm-up, and its answer when asked."""
    times, answers = {}, {}
    for name, kernel in kernels().items():
        value = kernel()
        runs = []
        for _ in range(task["repeat"]):
            start = time.perf_counter()
            kernel()
            runs.append((time.perf_counter() - start) * 1000)
        times[name] = statistics.median(runs)
        if task.get("answers"):
            answers[name] = answer(value)
    return {"ms": times, "answers": answers, "numpy": np.__version__, "pandas": pd.__version__}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
