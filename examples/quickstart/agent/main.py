"""The root agent: adds numbers and names weekdays itself, passes anything else down the chain."""

from dateutil import parser
from wasm_agents_sdk import delegate, log


class Calculator:
    def __init__(self, task):
        self.task = task

    def run(self):
        op = self.task.get("op")
        if op == "add":
            return self.task["a"] + self.task["b"]
        if op == "weekday":
            # python-dateutil: a real PyPI dependency, vendored into this agent's component.
            return parser.isoparse(self.task["date"]).strftime("%A")
        log("info", "passing the task down the chain", op=op)
        return delegate(self.task)  # no `to`: the next agent in the chain, the multiplier


def main(config):
    return Calculator(config["task"])
