"""math: order statistics over a stream with SortedList, range queries with SortedDict, a sliding-window median."""

import random


def compute(task):
    from sortedcontainers import SortedDict, SortedKeyList, SortedList  # loaded where the index is built

    rng = random.Random(task["seed"])
    values = [rng.randint(0, 10_000) for _ in range(task["n"])]
    ordered = SortedList(values)
    window, medians = SortedList(), []
    for index, value in enumerate(values):
        window.add(value)
        if index >= task["window"]:
            window.remove(values[index - task["window"]])
        if index >= task["window"] - 1:
            medians.append(window[len(window) // 2])
    prices = SortedDict({f"item{i:03d}": v for i, v in enumerate(values[:50])})
    by_len = SortedKeyList(task["words"], key=lambda w: (len(w), w))
    return {
        "min_max": [ordered[0], ordered[-1]],
        "percentiles": [ordered[int(p / 100 * (len(ordered) - 1))] for p in (10, 50, 90, 99)],
        "rank_of_5000": ordered.bisect_left(5000),
        "count_between": len(list(ordered.irange(2500, 7500))),
        "median_checksum": sum(medians),
        "last_medians": medians[-5:],
        "key_range": list(prices.irange("item010", "item015")),
        "peek": list(prices.peekitem(-1)),
        "by_length": list(by_len),
    }
