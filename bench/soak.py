"""Soak: many chains, a tenth of them hostile, on the local backend and on Ray; nothing lost, nothing leaks.

First it measures how late a 0.5 s helper's deadline fires beside chains making the heaviest host calls
their limits allow. Then checks, per backend: every task has exactly one line; every good answer is right; every hostile task ends
with its own error (or `timeout`, which an overloaded machine may turn any limit into); host RSS is flat
after warm-up (the slope is reported, in MB per 1000 chains); temp entries are back to where they were.
Writes bench/results/soak.json and exits 1 if a check fails.

Usage: python bench/soak.py [--chains 10000] [--backends local,ray] [--concurrency 16]
"""

import argparse
import json
import os
import reprlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from wasm_agents import Local, Ray, build, run_tasks

BENCH = Path(__file__).resolve().parent
PROJECT = BENCH / "projects" / "soak"
RESULTS = BENCH / "results"

# Each hostile task and the error type it must end with: the helper's limits, the root's result and event abuses.
HOSTILE = [
    ({"kind": "helper", "abuse": "loop"}, "timeout", "helper"),
    ({"kind": "helper", "abuse": "memory"}, "memory", "helper"),
    ({"kind": "helper", "abuse": "flood"}, "output", "helper"),
    ({"kind": "helper", "abuse": "sleep"}, "timeout", "helper"),
    ({"kind": "helper", "abuse": "raise"}, "RuntimeError", "helper"),
    ({"kind": "nan"}, "NotSerializable", "agent"),
    ({"kind": "huge-int"}, "NotSerializable", "agent"),
    ({"kind": "deep"}, "NotSerializable", "agent"),
    ({"kind": "wide"}, "NotSerializable", "agent"),
    ({"kind": "log-storm"}, None, None),  # succeeds; its events are budgeted
    ({"kind": "disk"}, None, None),  # succeeds; its 40 MiB and deep tree in /scratch are removed
]


def tasks(count: int) -> list[dict]:
    """`count` tasks: every tenth one hostile, cycling through HOSTILE; the rest well-behaved squares."""
    return [
        {**HOSTILE[(index // 10) % len(HOSTILE)][0], "id": index} if index % 10 == 0 else {"kind": "good", "n": index, "id": index}
        for index in range(count)
    ]


def problem(task: dict, line: dict) -> str | None:
    """Say what is wrong with the line of `task`, if anything."""
    if task["kind"] == "good":
        return None if line.get("result") == task["n"] ** 2 else f"task {task['id']}: wrong answer {reprlib.repr(line.get('result', line.get('error')))}"
    _, kind, agent = next(entry for entry in HOSTILE if {**entry[0], "id": task["id"]} == task)
    if kind is None:
        return None if line["ok"] else f"task {task['id']}: {reprlib.repr(line['error'])}"
    error = line.get("error") or {}
    if error.get("type") == kind and error.get("agent") == agent or error.get("type") == "timeout":
        return None
    return f"task {task['id']} ({task['kind']}): expected {kind} from {agent}, got {reprlib.repr(error or line.get('result'))}"


def rss_mb(pid: int) -> float:
    """VmRSS of process `pid` in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def temp_entries() -> set[str]:
    """The entries of the temp folder, but this process's own scratch folder."""
    own = f"wasm-agents-scratch-{os.getpid()}-"
    return {entry.name for entry in Path(tempfile.gettempdir()).iterdir() if not entry.name.startswith(own)}


def slope_per_1000(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of RSS (MB) against chains done, per 1000 chains."""
    if len(points) < 2:
        return 0.0
    return round(statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope * 1000, 3)


def soak(dist: Path, backend: Local | Ray, count: int) -> dict:
    """Run `count` tasks on `backend`; return the figures and the problems found."""
    work = tasks(count)
    before = temp_entries()
    seen: dict[int, int] = {}
    problems: list[str] = []
    samples: list[tuple[int, float]] = []
    workers: set[int] = set()
    start = time.perf_counter()
    for done, line in enumerate(run_tasks(dist, work, backend), 1):
        seen[line["index"]] = seen.get(line["index"], 0) + 1
        if (found := problem(work[line["index"]], line)) is not None:
            problems.append(found)
        if "worker" in line:
            workers.add(line["worker"]["pid"])
        if done % max(1, count // 40) == 0:
            samples.append((done, rss_mb(os.getpid()) + sum(rss_mb(pid) for pid in workers)))
    seconds = time.perf_counter() - start
    lost = [index for index in range(count) if index not in seen]
    duplicated = [index for index, times in seen.items() if times > 1]
    time.sleep(3)  # sleepers abandoned at their deadline come back after 2 s, and their scratch goes with them
    leftovers = sorted(temp_entries() - before)
    warm = samples[len(samples) // 5 :]
    return {
        "chains": count,
        "seconds": round(seconds, 1),
        "chains_per_s": round(count / seconds, 1),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "problems": problems[:20],
        "problem_count": len(problems),
        "rss_mb_first_last": [round(samples[0][1], 1), round(samples[-1][1], 1)] if samples else None,
        "rss_slope_mb_per_1000_chains_after_warm_up": slope_per_1000(warm),
        "temp_entries_left": leftovers,
    }


def deadlines(dist: Path, rounds: int) -> dict:
    """How late a 0.5 s helper's deadline fires alone, and beside two chains making the heaviest host calls allowed."""
    from concurrent.futures import ThreadPoolExecutor

    from wasm_agents import Runner

    def helper_loops() -> list[float]:
        durations = []
        for _ in range(rounds):
            start = time.perf_counter()
            runner.run({"kind": "helper", "abuse": "loop"})
            durations.append(round(time.perf_counter() - start, 3))
        return durations

    with Runner(dist) as runner, ThreadPoolExecutor(2) as pool:
        alone = helper_loops()
        heavy = [pool.submit(runner.run, {"kind": "heavy-calls", "seconds": 0.6 * rounds + 1}) for _ in range(2)]
        time.sleep(0.5)
        beside = helper_loops()
        calls = sum(future.result().result or 0 for future in heavy)
    return {
        "helper_wall_time_s": 0.5,
        "alone_s": {"median": round(statistics.median(alone), 3), "max": max(alone)},
        "beside_heavy_host_calls_s": {"median": round(statistics.median(beside), 3), "max": max(beside)},
        "heavy_host_calls": calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=10_000)
    parser.add_argument("--backends", default="local,ray")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wasm-agents-soak-"))
    try:
        project = Path(shutil.copytree(PROJECT, work / "soak"))
        dist = build(project).dist
        out = {"deadlines": deadlines(dist, 10)}
        print("deadlines", json.dumps(out["deadlines"]), flush=True)
        for name in args.backends.split(","):
            # Threads of this process: the RSS samples are this process's, and would miss worker processes'.
            backend = Local(concurrency=args.concurrency, workers=0) if name == "local" else Ray()
            out[name] = soak(dist, backend, args.chains)
            print(name, json.dumps(out[name], indent=2), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(out, indent=2) + "\n")
    failed = any(r["lost"] or r["duplicated"] or r["problem_count"] or r["temp_entries_left"] for key, r in out.items() if key != "deadlines")
    sys.stdout.flush()
    os._exit(1 if failed else 0)  # wasmtime's runtime threads can abort the process during interpreter teardown


if __name__ == "__main__":
    main()
