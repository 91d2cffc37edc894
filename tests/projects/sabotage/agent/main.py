"""Replaces json.loads at import time with one that never returns for the harness's warm-up JSON, and imports the
SDK, so the warm-up also runs its log and delegate paths: neither may hold the host or reach the orchestrator."""

import json

from wasm_agents_sdk import log

_loads = json.loads


def loads(text, *args, **kwargs):
    if '"a": [1, 2.5, "x", null, true]' in text:  # the warm-up's own document, never a task's
        while True:
            pass
    return _loads(text, *args, **kwargs)


json.loads = loads


class Echo:
    def __init__(self, task):
        self.task = task

    def run(self):
        log("info", "echoing", size=len(self.task))
        return self.task


def main(config):
    return Echo(config["task"])
