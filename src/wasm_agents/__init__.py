"""Run chains of cooperating, untrusted Python agents, each in its own WebAssembly sandbox.

    from wasm_agents import Runner, build

    dist = build(Path("my-project")).dist
    with Runner(dist) as runner:
        print(runner.run({"op": "add", "a": 2, "b": 3}).result)
"""

import importlib
from typing import Any

from wasm_agents.build import BuildResult as BuildResult, build as build  # eager: the function must win over its module's name

__version__ = "0.1.0"

# The other public names and the modules they live in, imported on first use: the command line imports this
# package first, and `wasm-agents verify` must not pay for wasmtime, nor `run` for the build machinery.
_PUBLIC = {
    "verify_dist": "wasm_agents.artifacts",
    "VerifiedDist": "wasm_agents.artifacts",
    "TrustPolicy": "wasm_agents.artifacts",
    "trust_policy": "wasm_agents.artifacts",
    "Runner": "wasm_agents.orchestrator",
    "ChainResult": "wasm_agents.orchestrator",
    "run_tasks": "wasm_agents.backends",
    "Local": "wasm_agents.backends",
    "Ray": "wasm_agents.backends",
    "Events": "wasm_agents.events",
    "ErrorKind": "wasm_agents.errors",
    "Failure": "wasm_agents.errors",
    "WasmAgentsError": "wasm_agents.errors",
    "VerificationError": "wasm_agents.errors",
}

__all__ = sorted(["build", "BuildResult", *_PUBLIC])


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'wasm_agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]
