"""The sandbox: the WIT contract, the guest harness built into every component, and the host engine."""

from pathlib import Path

WIT_DIR = Path(__file__).parent / "wit"
GUEST_DIR = Path(__file__).parent / "guest"
WORLD = "agent"
HARNESS_MODULE = "wasm_agents_harness"
GUEST_PYTHON = "3.14"

# The `run` input that warms a fresh instance up without running agent code (see pool.py);
# the guest harness has the same literal.
WARM_UP = "wasm-agents:warm-up"
