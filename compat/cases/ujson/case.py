"""data formats: fast JSON encoding with sorted keys and escaping options, and decoding, with ujson."""


def compute(task):
    import ujson  # loaded where the payload is serialised

    text = ujson.dumps(task["data"], sort_keys=True, ensure_ascii=False, escape_forward_slashes=False)
    return {"text": text, "round_trip": ujson.loads(text) == task["data"]}
