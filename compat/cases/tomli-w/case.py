"""data formats: write a nested config as TOML and read it back with the standard library."""

import tomli_w


def compute(task):
    import tomllib  # stdlib, only needed to check the round trip

    config = task["config"]
    text = tomli_w.dumps(config, multiline_strings=True)
    return {"toml": text, "round_trip_equal": tomllib.loads(text) == config, "lines": len(text.splitlines())}
