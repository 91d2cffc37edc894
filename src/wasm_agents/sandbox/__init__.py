"""The sandbox: the WIT contract, the guest harness built into every component, and the host engine."""

from pathlib import Path

WIT_DIR = Path(__file__).parent / "wit"
GUEST_DIR = Path(__file__).parent / "guest"
WORLD = "agent"
HARNESS_MODULE = "wasm_agents_harness"
GUEST_PYTHON = "3.14"

# Where the guest finds its files. componentize-py mounts its own stdlib at /python and the folders of
# its python path at /0, /1, /2 in the order given; the interpreter snapshot keeps those paths, so a
# fresh instance gets the same folders, read-only, at the same places (see build/componentize.py).
STDLIB_MOUNT = "/python"
CODE_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT = "/0", "/1", "/2"
# What an agent.toml may add: its read-only data folder, its private writable scratch folder.
DATA_MOUNT, SCRATCH_MOUNT = "/data", "/scratch"

# The `run` input that warms a fresh instance up without running agent code (see pool.py), and the one
# that has it compile the modules its snapshot lacks, at build time (see build/bytecode.py); the guest
# harness has the same literals. A task never reaches `run` as such: its input is always a JSON object.
WARM_UP = "wasm-agents:warm-up"
COMPILE_BYTECODE = "wasm-agents:compile-bytecode"
