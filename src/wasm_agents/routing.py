"""Where a delegation goes and whether the chain's policy allows it: policy only, no sandbox, no clock."""

from dataclasses import dataclass

from wasm_agents.errors import ErrorKind, Failure
from wasm_agents.project import Project


class Refusal(Exception):
    """A delegation the chain's policy does not allow."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        self.kind = kind
        super().__init__(message)

    def failure(self, agent: str | None = None) -> Failure:
        """Return the refusal as the failure it causes, attributed to `agent`."""
        return Failure(self.kind, str(self), agent=agent)


@dataclass(frozen=True)
class Budget:
    """What a chain has used when one of its agents asks to delegate."""

    hops_started: int  # invocations of the chain so far, finished or running
    now: float
    chain_deadline: float
    caller_deadline: float  # the caller's own: its wall time, within its own caller's and the chain's


def route(project: Project, stack: tuple[str, ...], to: str | None, budget: Budget) -> str:
    """Return the agent that the last agent of `stack` (root first) delegates to; raise Refusal when the policy forbids it.

    Without `to`, the target is the next agent in the chain order.
    """
    policy = project.policy
    caller = stack[-1]
    if to is None:
        position = policy.order.index(caller)
        if position + 1 >= len(policy.order):
            raise Refusal(ErrorKind.END_OF_CHAIN, f"agent '{caller}' is the last in the chain: no next agent")
        target = policy.order[position + 1]
    else:
        target = to
    if target not in project.agents:
        raise Refusal(ErrorKind.UNKNOWN_AGENT, f"agent '{caller}' delegated to unknown agent '{shown(target)}'")
    allowed = project.agents[caller].may_delegate_to
    if allowed is not None and target not in allowed:
        raise Refusal(ErrorKind.FORBIDDEN, f"agent '{caller}' may not delegate to '{target}'")
    if target in stack:
        raise Refusal(ErrorKind.CYCLE, f"delegation cycle refused: {' -> '.join((*stack, target))}")
    if len(stack) > policy.max_depth:
        raise Refusal(ErrorKind.DEPTH_EXCEEDED, f"delegation from '{caller}' to '{target}' exceeds max depth {policy.max_depth}")
    if budget.hops_started >= policy.max_hops:
        raise Refusal(ErrorKind.HOP_BUDGET_EXCEEDED, f"chain hop budget of {policy.max_hops} used up at '{caller}' -> '{target}'")
    check_time(project, caller, budget)
    return target


def check_time(project: Project, caller: str, budget: Budget) -> None:
    """Raise Refusal once the chain's or the caller's deadline has passed: no delegation starts after either."""
    if budget.now >= budget.chain_deadline:
        raise Refusal(ErrorKind.TIMEOUT, f"chain wall-time budget of {project.policy.wall_time_s:g} s used up")
    if budget.now >= budget.caller_deadline:
        raise Refusal(ErrorKind.TIMEOUT, f"agent '{caller}' is past its wall-time limit: no time left to delegate")


def shown(name: str) -> str:
    """An agent name as a message or event can quote it: a guest may send a name of any length."""
    return name if len(name) <= 100 else f"{name[:100]}..."
