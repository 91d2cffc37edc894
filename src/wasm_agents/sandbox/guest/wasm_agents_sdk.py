"""What agent code imports inside the sandbox to talk to the orchestrator.

    from wasm_agents_sdk import delegate, log
"""

import json
from typing import Any

import wit_world
from componentize_py_types import Err
from wasm_agents_protocol import LOG_LEVELS

__all__ = ["DelegationError", "delegate", "log"]


class DelegationError(Exception):
    """A delegated task was refused by the orchestrator or failed in the agent that ran it."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.type = error.get("type", "error")
        self.agent = error.get("agent")
        self.remote_traceback = error.get("traceback")
        super().__init__(error.get("message", "delegation failed"))


def delegate(task: Any, to: str | None = None) -> Any:
    """Run `task` in another agent's fresh sandbox and return its result.

    Without `to`, the task goes to the next agent in the chain.
    """
    request = json.dumps({"task": task, "to": to})
    try:
        answer = wit_world.host_call("delegate", request)
    except Err as refusal:
        raise DelegationError(json.loads(refusal.value)) from None
    return json.loads(answer)


def log(level: str, message: str, **fields: Any) -> None:
    """Emit a structured log event attributed to this agent."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    wit_world.log(level, json.dumps({"message": str(message), **fields}, default=repr))
