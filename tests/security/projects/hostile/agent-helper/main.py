"""Hostile helper: echoes its task, breaks its limits on request, or delegates to provoke refusals."""

import time

from wasm_agents_sdk import DelegationError, delegate


class Helper:
    def __init__(self, task):
        self.task = task

    def run(self):
        op = self.task.get("op") if isinstance(self.task, dict) else None
        if op == "back":  # helper -> root: a cycle the orchestrator must refuse
            return delegate(self.task["inner"], to="agent")
        if op == "next":  # the helper is last in the chain
            try:
                return delegate(self.task.get("inner"))
            except DelegationError as error:
                return {"caught": error.type, "message": str(error)}
        if op == "raise":
            raise RuntimeError("helper failed on purpose")
        if op == "loop":
            while True:
                pass
        if op == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(4 * 1024 * 1024))
        if op == "flood":
            while True:
                print("x" * 10_000)
        if op == "sleep-forever":
            time.sleep(10**6)
            return "woke up"
        return {"echo": self.task}


def main(config):
    return Helper(config["task"])
