"""Run one compatibility case under native CPython: `python -I native.py CASE_PY TASK_JSON OUT_JSON`.

The expected answer of a case is what its compute(task) returns here, with the same package versions the
sandbox build locked, encoded as the guest harness encodes a result (json.dumps, no NaN).
"""

import importlib.util
import json
import sys
import traceback


def main(case_py: str, task_json: str, out_json: str) -> None:
    try:
        with open(task_json, encoding="utf-8") as file:
            task = json.load(file)
        spec = importlib.util.spec_from_file_location("compat_case", case_py)
        module = importlib.util.module_from_spec(spec)
        sys.modules["compat_case"] = module
        spec.loader.exec_module(module)
        outcome = {"ok": True, "result": json.loads(json.dumps(module.compute(task), allow_nan=False))}
    except BaseException as error:  # noqa: BLE001 - every failure is reported, as the guest harness does
        outcome = {"ok": False, "type": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()}
    with open(out_json, "w", encoding="utf-8") as file:
        json.dump(outcome, file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
