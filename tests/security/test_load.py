"""2,000 chains at concurrency 16, well-behaved and hostile mixed: every answer exact, memory bounded."""

import gc
import time
from concurrent.futures import ThreadPoolExecutor

CHAINS = 2000
CONCURRENCY = 16
RSS_GROWTH_BOUND_MB = 300

# index % 20 -> the task; the hostile ones run in the helper (wall_time_s = 0.5, memory_mb = 32,
# output_bytes = 100000) and each must end with exactly its error, attributed to the helper.
HOSTILE = {
    3: ({"op": "raise"}, "ValueError", "agent"),
    5: ({"op": "helper", "inner": {"op": "raise"}}, "RuntimeError", "helper"),
    10: ({"op": "helper", "inner": {"op": "loop"}}, "timeout", "helper"),
    13: ({"op": "helper", "inner": {"op": "memory"}}, "memory", "helper"),
    15: ({"op": "helper", "inner": {"op": "flood"}}, "output", "helper"),
}


def task_for(index: int) -> dict:
    kind = index % 20
    if kind in HOSTILE:
        return {**HOSTILE[kind][0], "index": index}
    if kind % 4 == 1:
        return {"op": "helper", "inner": {"op": "echo", "index": index}}
    return {"op": "echo", "index": index}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_many_chains_mixed_with_hostile_ones(hostile_runner, record_property):
    # Warm up: every kind once, so the baseline includes the engine, the compiled code and a few stores.
    for index in range(20):
        hostile_runner.run(task_for(index))
    gc.collect()
    before = rss_mb()
    start = time.monotonic()

    def one(index: int):
        return index, hostile_runner.run(task_for(index))

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(one, range(CHAINS)))
    elapsed = time.monotonic() - start
    gc.collect()
    after = rss_mb()

    seen = [index for index, _ in answers]
    assert sorted(seen) == list(range(CHAINS)) and len(set(seen)) == CHAINS  # each exactly once
    counts = {}
    for index, result in answers:
        kind = index % 20
        if kind in HOSTILE:
            _, expected, agent = HOSTILE[kind]
            assert not result.ok, (index, result)
            assert (result.error["type"], result.error["agent"]) == (expected, agent), (index, result.error)
            counts[expected] = counts.get(expected, 0) + 1
        elif kind % 4 == 1:
            assert result.ok and result.result == {"echo": {"op": "echo", "index": index}}, (index, result)
            counts["helper-ok"] = counts.get("helper-ok", 0) + 1
        else:
            assert result.ok and result.result == {"index": index, "square": index * index}, (index, result)
            counts["ok"] = counts.get("ok", 0) + 1

    figures = {
        "chains": CHAINS, "concurrency": CONCURRENCY, "seconds": round(elapsed, 1),
        "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1), "rss_growth_mb": round(after - before, 1),
        **{f"count_{key}": value for key, value in sorted(counts.items())},
    }
    for key, value in figures.items():
        record_property(key, value)
    print("load:", figures)
    assert after - before < RSS_GROWTH_BOUND_MB, figures
