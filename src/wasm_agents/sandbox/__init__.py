"""The sandbox: the WIT contract, the guest harness built into every component, and the host engine."""

from pathlib import Path

from wasm_agents.sandbox.guest.wasm_agents_protocol import (
    CODE_MOUNT,
    COMPILE_BYTECODE,
    DATA_MOUNT,
    DEPS_MOUNT,
    LOG_LEVELS,
    SANDBOX_MOUNT,
    SCRATCH_MOUNT,
    STDLIB_MOUNT,
    WARM_UP,
)

__all__ = [
    "CODE_MOUNT", "COMPILE_BYTECODE", "DATA_MOUNT", "DEPS_MOUNT", "GUEST_DIR", "GUEST_PYTHON", "HARNESS_MODULE",
    "LOG_LEVELS", "SANDBOX_MOUNT", "SCRATCH_MOUNT", "STDLIB_MOUNT", "WARM_UP", "WIT_DIR", "WORLD",
]  # fmt: skip

WIT_DIR = Path(__file__).parent / "wit"
GUEST_DIR = Path(__file__).parent / "guest"
WORLD = "agent"
HARNESS_MODULE = "wasm_agents_harness"
GUEST_PYTHON = "3.14"
