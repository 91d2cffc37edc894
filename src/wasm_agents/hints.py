"""The setting to change when a limit stops an agent or a chain, named as the user writes it."""

from wasm_agents.errors import ErrorKind

# The agent.toml key behind each limit an invocation can hit (a call stack has none).
AGENT_KEYS = {
    ErrorKind.TIMEOUT: "[limits] wall_time_s",
    ErrorKind.MEMORY: "[limits] memory_mb",
    ErrorKind.FUEL: "[limits] fuel",
    ErrorKind.OUTPUT: "[limits] output_bytes",
    ErrorKind.SCRATCH: "[files] scratch_mb",
}
# The wasm-agents.toml key behind each limit of a whole chain.
CHAIN_KEYS = {ErrorKind.DEPTH_EXCEEDED: "[chain] max_depth", ErrorKind.HOP_BUDGET_EXCEEDED: "[chain] max_hops"}


def limit_hint(kind: str, message: str, folder: str | None) -> str | None:
    """Say which key to raise for a failure of type `kind` with `message` in the agent of `folder` (None: a chain's
    failure), as the project names it; None when no setting raises it."""
    if kind in CHAIN_KEYS:
        return f"raise {CHAIN_KEYS[kind]} in wasm-agents.toml"
    if kind not in AGENT_KEYS or folder is None:
        return None
    if kind == ErrorKind.TIMEOUT and not message.startswith("wall-time limit"):
        return None  # the caller's time ran out, not the agent's own
    return f"raise {AGENT_KEYS[kind]} in {folder}/agent.toml"
