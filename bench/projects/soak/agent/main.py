"""The soak's root agent: well-behaved squares through the helper, or one of the abuses the host must contain."""

import json
import os
import sys

import wit_world
from wasm_agents_sdk import delegate, log


class Soak:
    def __init__(self, config):
        self.task = config["task"]

    def run(self):
        kind = self.task["kind"]
        if kind == "good":
            return delegate({"kind": "square", "n": self.task["n"]})
        if kind == "helper":  # a limit breaker, run in the helper under its short limits
            return delegate({"kind": self.task["abuse"]})
        if kind == "nan":  # the result text is the guest's to choose
            json.dumps = lambda value, **options: "NaN"
            return 0
        if kind == "huge-int":
            sys.set_int_max_str_digits(0)
            return 10**5071
        if kind == "deep":
            result = []
            for _ in range(988):
                result = [result]
            return result
        if kind == "wide":  # 20 MB of JSON, past the root's limit of 16 MiB
            return [[]] * 5_000_000
        if kind == "log-storm":
            for _ in range(20_000):
                wit_world.log("info", "")
            log("info", "storm over")
            return "logged"
        if kind == "disk":  # 40 MiB and a deep tree in /scratch, left for the host to remove
            with open("/scratch/blob", "wb") as handle:
                for _ in range(40):
                    handle.write(b"x" * (1 << 20))
            path = "/scratch"
            for _ in range(500):
                path += "/d"
                os.mkdir(path)
            return "written"
        if kind == "heavy-calls":  # the host's own work: the largest requests it still decodes, for `seconds`
            import time

            from componentize_py_types import Err

            shapes = ['{"task": [' + "[]," * 249_990 + '[]], "to": "ghost"}', '{"task": "' + "x" * (15 << 20) + '", "to": "ghost"}']
            calls, end = 0, time.monotonic() + self.task["seconds"]
            while time.monotonic() < end:
                try:
                    wit_world.host_call("delegate", shapes[calls % 2])
                except Err:
                    calls += 1
            return calls
        raise ValueError(f"unknown kind {kind!r}")


def main(config):
    return Soak(config)
