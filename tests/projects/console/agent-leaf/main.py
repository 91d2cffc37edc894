"""The last agent of the chain: counts words, or spins until its wall time runs out."""


class Leaf:
    def __init__(self, task):
        self.task = task

    def run(self):
        if self.task["op"] == "spin":
            while True:
                pass
        return {"words": len(self.task.get("text", "").split())}


def main(config):
    return Leaf(config["task"])
