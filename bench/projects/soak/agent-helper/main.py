"""The soak's helper: squares, or breaks one of its limits."""

import time


class Helper:
    def __init__(self, config):
        self.task = config["task"]

    def run(self):
        kind = self.task["kind"]
        if kind == "square":
            return self.task["n"] ** 2
        if kind == "loop":
            while True:
                pass
        if kind == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(4 << 20))
        if kind == "flood":
            while True:
                print("x" * 10_000)
        if kind == "sleep":  # blocked in WASI past its deadline: abandoned, then back after 2 s
            time.sleep(2)
            return "slept"
        if kind == "raise":
            raise RuntimeError("helper failed on purpose")
        raise ValueError(f"unknown kind {kind!r}")


def main(config):
    return Helper(config)
