"""text: detect the encoding and language of byte strings in legacy code pages and decode them."""


def compute(task):
    from charset_normalizer import from_bytes  # loaded where undecoded bytes arrive

    detected = {}
    for label, spec in task["samples"].items():
        raw = spec["text"].encode(spec["encoding"])
        best = from_bytes(raw).best()
        detected[label] = {
            "encoding": best.encoding if best else None,
            "decoded_ok": best is not None and str(best) == spec["text"],
            "language": best.language if best else None,
        }
    return detected
