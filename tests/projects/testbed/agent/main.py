"""A root agent that does whatever the task says: well-behaved or hostile."""

import os
import platform
import sys
import time

from wasm_agents_sdk import DelegationError, delegate, log


class Probe:
    def __init__(self, config):
        self.config = config
        self.task = config["task"]

    def run(self):
        op = self.task["op"]
        if op == "add":
            return self.task["a"] + self.task["b"]
        if op == "config":
            return {"settings": self.config["settings"], "agent": self.config["agent"]}
        if op == "next":
            return delegate(self.task["inner"])
        if op == "to":
            return delegate(self.task["inner"], to=self.task["target"])
        if op == "catch":
            try:
                return delegate(self.task["inner"], to=self.task["target"])
            except DelegationError as error:
                return {"caught": error.type, "agent": error.agent, "message": str(error)}
        if op == "log":
            log("warning", "probe says", answer=42)
            print("to stdout")
            print("to stderr", file=sys.stderr)
            return "logged"
        if op == "raise":
            raise ValueError("probe failed on purpose")
        if op == "not-json":
            return object()
        if op == "sleep":
            time.sleep(self.task["seconds"])
            return "slept"
        if op == "loop":
            while True:
                pass
        if op == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(8 * 1024 * 1024))
        if op == "flood":
            while True:
                print("x" * 10_000)
        if op == "recurse":
            sys.setrecursionlimit(1_000_000)

            def down(n):
                return down(n + 1) + 1

            return down(0)
        if op == "exit":
            os._exit(7)
        if op == "exec":  # a snippet of agent code; it leaves its answer in `result`
            scope = {}
            exec(self.task["code"], scope)
            return scope.get("result")
        if op == "markers":  # the PEP 508 environment, as vendoring assumes it (builder/vendor.py GUEST_MARKERS)
            return {
                "implementation_name": sys.implementation.name,
                "implementation_version": platform.python_version(),
                "os_name": os.name,
                "platform_machine": platform.machine(),
                "platform_python_implementation": platform.python_implementation(),
                "platform_release": platform.release(),
                "platform_system": platform.system(),
                "platform_version": platform.version(),
                "python_full_version": platform.python_version(),
                "python_version": ".".join(platform.python_version_tuple()[:2]),
                "sys_platform": sys.platform,
            }
        if op == "env":
            return dict(os.environ)
        if op == "listdir":
            return os.listdir(self.task["path"])
        if op == "read":
            with open(self.task["path"]) as handle:
                return handle.read()
        raise KeyError(f"unknown op {op!r}")


def main(config):
    return Probe(config)
