"""The root agent (default runtime): checks the task, has the analyst do the numbers, and words the answer."""

from wasm_agents_sdk import delegate, log


class Report:
    def __init__(self, task):
        self.task = task

    def run(self):
        op = self.task.get("op")
        if op not in ("totals", "solve"):
            raise ValueError(f"unknown op {op!r}: use 'totals' (sales rows) or 'solve' (a linear system)")
        log("info", "asking the analyst", op=op)
        answer = delegate(self.task, to="analyst")  # runs on the scientific runtime, with numpy and pandas
        if op == "totals":
            best = max(answer, key=lambda region: answer[region]["sum"])
            return {"by_region": answer, "best_region": best}
        return {"x": answer, "size": len(answer)}


def main(config):
    return Report(config["task"])
