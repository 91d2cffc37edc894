"""The analyst: numpy and pandas on the scientific runtime, and probes of its limits and its freshness."""

import io
import logging
import random
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
from wasm_agents_sdk import delegate, log

CALLS = []  # a fresh instance per invocation: never longer than one


class Analyst:
    def __init__(self, task, settings):
        self.task = task
        self.settings = settings

    def run(self):
        CALLS.append(1)
        op = self.task["op"]
        if op == "solve":
            x = np.linalg.solve(np.array(self.task["a"]), np.array(self.task["b"]))
            return x.tolist()
        if op == "groupby":
            table = pd.DataFrame(self.task["rows"]).groupby("key")["value"].agg(["sum", "mean", "std"])
            return {key: [float(row["sum"]), float(row["mean"]), float(row["std"])] for key, row in table.iterrows()}
        if op == "fresh":
            return {"calls": len(CALLS), "random": random.random(), "numpy": float(np.random.rand()), "modules": "pandas" in sys.modules}
        if op == "log":
            log("info", "analysed", rows=3)
            logging.getLogger("analyst").warning("through logging")
            print("to stdout")
            return "logged"
        if op == "format":
            return delegate({"values": np.linspace(0, 1, 3).tolist()}, to="formatter")
        if op == "busy":
            while True:
                pass
        if op == "sleep":
            time.sleep(3600)
        if op == "memory":
            return len(np.ones(self.task["mb"] << 17))  # 8-byte floats: mb MiB
        if op == "flood":
            while True:
                print("x" * 1000)
        if op == "scratch":
            with open("/scratch/frame.csv", "w") as file:
                pd.DataFrame({"a": [1, 2]}).to_csv(file, index=False)
            return pd.read_csv("/scratch/frame.csv")["a"].sum().item()
        if op == "fetch":  # an API's JSON into a frame, through the host (only with [network] in agent.toml)
            with urllib.request.urlopen(self.task["url"], timeout=5) as answer:
                frame = pd.read_json(io.BytesIO(answer.read()), typ="series")
            return frame["method"]
        if op == "raise":
            raise ValueError("bad numbers")
        raise ValueError(f"unknown op {op!r}")


def main(config):
    return Analyst(config["task"], config["settings"])
