"""The root agent: passes every task down the chain."""

from wasm_agents_sdk import delegate, log


class Root:
    def __init__(self, task):
        self.task = task

    def run(self):
        log("info", "task received", op=self.task["op"])
        return delegate(self.task)


def main(config):
    return Root(config["task"])
