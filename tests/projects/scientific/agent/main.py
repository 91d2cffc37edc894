"""The root agent (default runtime): passes every task to the analyst, which runs on the scientific runtime."""

from wasm_agents_sdk import DelegationError, delegate


class Root:
    def __init__(self, task):
        self.task = task

    def run(self):
        try:
            return {"analyst": delegate(self.task, to="analyst")}
        except DelegationError as error:
            return {"refused": error.type, "agent": error.agent, "message": str(error)}


def main(config):
    return Root(config["task"])
