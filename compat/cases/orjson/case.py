"""data formats: serialise dates, dataclasses and sorted keys to JSON bytes with orjson."""

import dataclasses
import datetime


@dataclasses.dataclass
class Point:
    x: int
    y: int


def compute(task):
    import orjson  # loaded where the payload is serialised

    value = {"when": datetime.datetime.fromisoformat(task["when"]), "points": [Point(*p) for p in task["points"]], "z": 1, "a": 2}
    return {"json": orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode()}
