"""utilities: chunking, windows, grouping, distinct permutations, run-length coding and combinatorics with more-itertools."""


def compute(task):
    import more_itertools as mit  # loaded where a batch job starts

    items = task["items"]
    evens, odds = mit.partition(lambda n: n % 2, items)
    return {
        "chunked": list(mit.chunked(items, 4)),
        "windowed": list(mit.windowed(items[:6], 3)),
        "partition": [list(evens), list(odds)],
        "distinct_permutations": len(list(mit.distinct_permutations(task["letters"]))),
        "run_length": [list(pair) for pair in mit.run_length.encode(task["letters"])],
        "collapse": list(mit.collapse(task["nested"])),
        "unique_everseen": list(mit.unique_everseen(task["letters"])),
        "nth_combination": list(mit.nth_combination(range(20), 5, 12345)),
        "sieve": list(mit.sieve(60))[-5:],
        "bucket": sorted((key, list(mit.bucket(items, key=lambda n: n % 3)[key])) for key in range(3)),
        "split_at": list(mit.split_at(items, lambda n: n == 0)),
        "minmax": list(mit.minmax(items)),
        "interleave": list(mit.interleave_longest([1, 2, 3], "ab", [True])),
        "powerset_count": mit.ilen(mit.powerset(range(10))),
        "spy": mit.spy(iter(items), 3)[0],
    }
