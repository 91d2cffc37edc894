"""utilities: clean nested data with remap, bucketize, human-readable sizes, string case conversions and an LRU cache."""


def compute(task):
    # boltons is a set of independent modules: each is imported where it is used.
    from boltons import cacheutils, iterutils, strutils

    cleaned = iterutils.remap(task["data"], visit=lambda path, key, value: value not in (None, "", [], {}))
    cache = cacheutils.LRU(max_size=3)
    for key in task["keys"]:
        cache[key] = cache.get(key, 0) + 1
    return {
        "cleaned": cleaned,
        "paths": sorted(".".join(map(str, path)) for path, _ in iterutils.research(task["data"], query=lambda p, k, v: v is None)),
        "buckets": {str(k): v for k, v in sorted(iterutils.bucketize(task["numbers"], key=lambda n: n % 3).items())},
        "chunks": iterutils.chunked(task["numbers"], 4),
        "sizes": [strutils.bytes2human(n) for n in task["bytes"]],
        "under": [strutils.camel2under(name) for name in task["names"]],
        "camel": [strutils.under2camel(strutils.camel2under(name)) for name in task["names"]],
        "ordinals": [strutils.ordinalize(n) for n in (1, 2, 3, 11, 112)],
        "slug": strutils.slugify("Hello, Wörld! -- again"),
        "lru": sorted(cache.items()),
        "pluralized": [strutils.pluralize(word) for word in ("box", "city", "mouse")],
    }
