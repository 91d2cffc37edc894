"""The analyst (scientific runtime: its requirements name numpy and pandas): a pandas groupby, a numpy solve."""

import numpy as np
import pandas as pd
from wasm_agents_sdk import log


class Analyst:
    def __init__(self, task):
        self.task = task

    def run(self):
        if self.task["op"] == "totals":
            sales = pd.DataFrame(self.task["rows"])
            table = sales.groupby("region")["amount"].agg(["sum", "mean", "count"])
            log("info", "grouped", rows=len(sales), regions=len(table))
            return {region: {"sum": float(row["sum"]), "mean": float(row["mean"]), "count": int(row["count"])}
                    for region, row in table.iterrows()}
        a, b = np.array(self.task["a"], dtype=float), np.array(self.task["b"], dtype=float)
        x = np.linalg.solve(a, b)
        log("info", "solved", size=len(b), residual=float(np.abs(a @ x - b).max()))
        return x.tolist()


def main(config):
    return Analyst(config["task"])
