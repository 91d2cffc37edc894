"""The guest side of an agent of the scientific runtime: the component's harness, driven through the runtime's door.

`prepare()` runs once, before the memory image of the agent is taken: it imports the sandbox's adaptations and
the harness, and with it the agent's main module and whatever that imports (numpy, pandas, ...). `run(input)`
runs in each fresh instance and sends the outcome as one frame: "result\\n<json>" or "error\\n<json>".
"""

import _host


# The packages built into the runtime live in its stdlib zip: for the sandbox's adaptations they are packages, as
# an agent's vendored ones are (they get the ctypes that only names C types, as in a component).
RUNTIME_PACKAGES = "/usr/local/lib/python315.zip/"


def prepare() -> None:
    """Import everything an invocation needs, so that the image holds it."""
    import sys

    import wasm_agents_sandbox

    sys.argv[:] = []  # as in a component: the runtime's own start-up leaves [""]
    wasm_agents_sandbox.DEPS = (wasm_agents_sandbox.DEPS, RUNTIME_PACKAGES)
    import wasm_agents_harness  # noqa: F401 - and with it the agent's main module


def run(input: str) -> None:
    """Run the harness's `run` export on `input` and send its outcome to the host."""
    import wasm_agents_harness
    from componentize_py_types import Err

    try:
        frame = b"result\n" + wasm_agents_harness.WitWorld().run(input).encode()
    except Err as error:
        frame = b"error\n" + str(error.value).encode()
    _host.call(frame)
