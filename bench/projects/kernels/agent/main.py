"""CPU kernels for the guest/native ratio: the task picks one; run() returns the kernel's own time.

The same module runs natively (bench/native_kernels.py), in Pyodide (bench/pyodide/chain.mjs) and on the
scientific runtime (bench/cpu_breakdown.py), so every side times exactly the same code.
"""

import json
import re
import sys
import time

SIZES = {"fib": 27, "loop": 1_000_000, "json": 10, "regex": 6, "text": 4, "float": 20}

# Compiled at import, so the timed part is matching, as in code that reuses its patterns.
LOG_LINE = re.compile(r"(?P<day>\d{4}-\d\d-\d\d) (?P<level>[A-Z]+) (?P<user>\w+)@(?P<host>[\w.]+) took=(?P<ms>\d+)ms")
SECRET = re.compile(r"\b(token|key)=\w+")
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu")


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


def regex(times):
    """Parse log lines with named groups, then redact and split them: the re module's matcher and its Python-level API."""
    lines = [
        f"2024-0{i % 9 + 1}-1{i % 10} {('INFO', 'WARN', 'ERROR')[i % 3]} user{i % 97}@host{i % 13}.example took={i % 1000}ms "
        f"token=abc{i}def key=k{i}"
        for i in range(4000)
    ]
    text = "\n".join(lines)
    slow = 0
    for _ in range(times):
        for line in lines:
            match = LOG_LINE.match(line)
            if match and int(match["ms"]) > 500 and match["level"] != "INFO":
                slow += 1
        slow += len(SECRET.sub(r"\1=***", text)) % 7
        slow += len(re.findall(r"user(\d+)@", text)) + len(re.split(r"\s+", lines[slow % len(lines)]))
    return slow


def text(times):
    """Count words and bigrams in dicts, then build a report with f-strings, joins and str methods."""
    words = [WORDS[(i * 7 + i // 13) % len(WORDS)] + ("s" if i % 5 == 0 else "") for i in range(30000)]
    size = 0
    for _ in range(times):
        counts, pairs = {}, {}
        for first, second in zip(words, words[1:]):
            counts[first] = counts.get(first, 0) + 1
            key = first + " " + second
            pairs[key] = pairs.get(key, 0) + 1
        parts = []
        for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            parts.append(f"{word.upper():>10}: {count:6d} {word.capitalize().replace('a', '4')}")
        for key, count in pairs.items():
            left, _, right = key.partition(" ")
            parts.append(f"{left[:3]}-{right[::-1]}={count}")
        size += len("\n".join(parts).lower().split("="))
    return size


def float_loop(times):
    """A Mandelbrot grid in plain float arithmetic: boxed floats, comparisons and a while loop."""
    inside = 0
    for _ in range(times):
        for row in range(40):
            y = row / 20.0 - 1.0
            for column in range(60):
                x = column / 20.0 - 2.0
                a = b = 0.0
                steps = 0
                while steps < 30 and a * a + b * b <= 4.0:
                    a, b = a * a - b * b + x, 2.0 * a * b + y
                    steps += 1
                inside += steps == 30
    return inside


KERNELS = {"fib": fib, "loop": loop, "json": json_round_trip, "regex": regex, "text": text, "float": float_loop}


def run_kernel(name, size=None):
    """Run kernel `name` once; return its answer and how long it took in ms."""
    start = time.perf_counter()
    answer = KERNELS[name](SIZES[name] if size is None else size)
    return {"answer": answer, "ms": (time.perf_counter() - start) * 1000}


def interpreter():
    """Describe the interpreter running this module: version, build flags, C accelerators present."""
    import importlib.util
    import sysconfig

    config = {key: sysconfig.get_config_var(key) for key in ("CC", "OPT", "CFLAGS", "CONFIG_ARGS", "PY_CFLAGS_NODIST", "LDSHARED")}
    accelerators = ("_json", "_sre", "_functools", "_collections", "_datetime", "_decimal", "_pickle", "_heapq", "_bisect")
    return {
        "version": sys.version,
        "platform": sys.platform,
        "implementation": sys.implementation.name,
        "config": config,
        "accelerators": {name: importlib.util.find_spec(name) is not None for name in accelerators},
        "json_c_scanner": json.scanner.c_make_scanner is not None,
        "json_c_encoder": json.encoder.c_make_encoder is not None,
        "jit": bool(getattr(getattr(sys, "_jit", None), "is_enabled", lambda: False)()),
    }


def run_task(task):
    """Answer one task: a kernel's result and time, or a description of the interpreter."""
    if task.get("kernel") == "interpreter":
        return interpreter()
    return run_kernel(task["kernel"], task.get("size"))


class Kernel:
    def __init__(self, task):
        self.task = task

    def run(self):
        return run_task(self.task)


def main(config):
    return Kernel(config["task"])
