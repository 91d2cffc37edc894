"""Runs with a fuel budget and may delegate to nobody."""

from wasm_agents_sdk import delegate


class Burner:
    def __init__(self, config):
        self.task = config["task"]

    def run(self):
        op = self.task.get("op")
        if op == "loop":
            while True:
                pass
        if op == "to":
            return delegate(self.task["inner"], to=self.task["target"])
        return {"fuel": "ok"}


def main(config):
    return Burner(config)
