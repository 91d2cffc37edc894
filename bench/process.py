"""Time `wasm-agents` as whole processes, two source trees interleaved: `python bench/process.py --old OLD_SRC [--new NEW_SRC]`.

Each round runs every command once with each tree (order alternating), so both see the same machine load; the
medians of wall and CPU time (user + system of the child) are printed per command and tree, with new / old.
OLD_SRC is the `src` folder of another checkout, e.g. of `git worktree add --detach /tmp/base HEAD`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASK = '{"op": "add", "a": 2, "b": 3}'


def commands(dist: Path) -> dict[str, list[str]]:
    """The commands timed: a one-task run, verify, and --help."""
    return {
        "run": ["run", str(dist), "--task", TASK],
        "verify": ["verify", str(dist)],
        "--help": ["--help"],
    }


def timed(src: Path, args: list[str]) -> tuple[float, float]:
    """Run the CLI from `src` with `args`; return its wall and CPU seconds."""
    argv = [sys.executable, "-c", "from wasm_agents.cli import main; main()", *args]
    # With bytecode, as an installed package runs: without it every module is compiled from source on each start.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPATH": str(src)}
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"{src}: {' '.join(args)}: exit code {done.returncode}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> None:
    """Time the commands with both trees, interleaved, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", type=Path, required=True, help="src folder of the tree to compare against")
    parser.add_argument("--new", type=Path, default=ROOT / "src", help="src folder of the tree measured (default: this one)")
    parser.add_argument("--dist", type=Path, default=ROOT / "examples/quickstart/dist")
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    trees = {"old": options.old.resolve(), "new": options.new.resolve()}
    runs = commands(options.dist.resolve())
    for src in trees.values():  # page cache, compiled cache and bytecode, before anything is timed
        for args in runs.values():
            timed(src, args)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {(c, t): [] for c in runs for t in trees}
    for round_ in range(options.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for command, args in runs.items():
            for tree in order:
                samples[command, tree].append(timed(trees[tree], args))
    print(f"{options.rounds} rounds, medians (ms); load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':<8} {'old wall':>9} {'new wall':>9} {'new/old':>8} {'old cpu':>8} {'new cpu':>8}")
    for command in runs:
        old_wall, old_cpu = (statistics.median(x[i] for x in samples[command, "old"]) * 1000 for i in (0, 1))
        new_wall, new_cpu = (statistics.median(x[i] for x in samples[command, "new"]) * 1000 for i in (0, 1))
        print(f"{command:<8} {old_wall:9.1f} {new_wall:9.1f} {new_wall / old_wall:8.2f} {old_cpu:8.1f} {new_cpu:8.1f}")


if __name__ == "__main__":
    main()
