"""Echoes its task; can read its data dir, use its scratch dir, and pass tasks on."""

import os

from wasm_agents_sdk import delegate


class Echo:
    def __init__(self, config):
        self.task = config["task"]

    def run(self):
        op = self.task.get("op")
        if op == "multiply":
            return self.task["a"] * self.task["b"]
        if op == "to":
            return delegate(self.task["inner"], to=self.task["target"])
        if op == "next":
            return delegate(self.task["inner"])
        if op == "data":
            with open("/data/hello.txt") as handle:
                return handle.read()
        if op == "scratch":
            seen = os.listdir("/scratch")
            with open("/scratch/note.txt", "w") as handle:
                handle.write("written")
            with open("/scratch/note.txt") as handle:
                return {"before": seen, "read": handle.read()}
        if op == "exec":  # a snippet of agent code; it leaves its answer in `result`
            scope = {}
            exec(self.task["code"], scope)
            return scope.get("result")
        if op == "deep-scratch":  # folders nested as deep as WASI lets a guest go
            path, depth = "/scratch", 0
            try:
                for depth in range(1, self.task["depth"] + 1):
                    path += "/d"
                    os.mkdir(path)
            except OSError:
                depth -= 1
            return depth
        if op == "raise-as":  # an exception class of any name, e.g. one the host uses
            raise type(self.task["name"], (Exception,), {})("raised by echo")
        if op == "write-data":
            with open("/data/evil.txt", "w") as handle:
                handle.write("x")
            return "wrote"
        return {"echo": self.task}


def main(config):
    return Echo(config)
