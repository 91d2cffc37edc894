"""The scientific runtime: CPython 3.15 on WASI with numpy, pandas and scipy built in, run under an agent's limits.

`run_python(source, task_json, limits)` runs code in a fresh instance (`Instance.start`, `Instance.run` drive one
directly); `capture` takes a memory image after preload code and `open_image` checks one, so that instances
restored from it start with their imports done; `wheel` fetches and verifies the runtime's files, `module`
compiles them once per host.
"""

from wasm_agents.scientific.image import Captured, Image, PreloadError, capture, open_image
from wasm_agents.scientific.instance import Instance, PythonRun, run_python

__all__ = ["Captured", "Image", "Instance", "PreloadError", "PythonRun", "capture", "open_image", "run_python"]
