"""What the host and the guest modules agree on: where the guest's files are, the harness's special inputs, log levels.

The guest imports it as `wasm_agents_protocol` (from /2), the host as `wasm_agents.sandbox.guest.wasm_agents_protocol`:
one copy of each value for both sides.
"""

# componentize-py mounts its own stdlib at /python and the folders of its python path at /0, /1, /2 in the order
# given; the interpreter snapshot keeps those paths, so a fresh instance gets the same folders, read-only, at the
# same places (see wasm_agents/builder/componentize.py).
STDLIB_MOUNT = "/python"
CODE_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT = "/0", "/1", "/2"
# What an agent.toml may add: its read-only data folder, its private writable scratch folder.
DATA_MOUNT, SCRATCH_MOUNT = "/data", "/scratch"

# The `run` input that warms a fresh instance up without running agent code, and the one that has it compile
# the modules its snapshot lacks, at build time. A task never reaches `run` as such: its input is a JSON object.
WARM_UP = "wasm-agents:warm-up"
COMPILE_BYTECODE = "wasm-agents:compile-bytecode"

# The levels of the SDK's log() and of events, lowest first.
LOG_LEVELS = ("debug", "info", "warning", "error")
