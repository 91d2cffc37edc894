"""The scientific runtime: CPython 3.15 on WASI with numpy, pandas and scipy built in, run under an agent's limits.

`run_python(source, task_json, limits)` runs code in a fresh instance; `wheel` fetches and verifies the
runtime's files, `module` compiles them once per host.
"""

from wasm_agents.scientific.instance import PythonRun, run_python

__all__ = ["PythonRun", "run_python"]
