"""A helper agent: multiplies."""

from wasm_agents_sdk import log


class Multiplier:
    def __init__(self, task):
        self.task = task

    def run(self):
        if self.task.get("op") != "multiply":
            raise ValueError(f"multiplier cannot handle op {self.task.get('op')!r}")
        product = self.task["a"] * self.task["b"]
        log("info", "multiplied", a=self.task["a"], b=self.task["b"], product=product)
        return product


def main(config):
    return Multiplier(config["task"])
