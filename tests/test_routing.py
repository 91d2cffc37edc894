"""route(): the chain policy on its own, without components or a clock."""

import pytest

from wasm_agents.errors import ErrorKind
from wasm_agents.project import AgentSpec, ChainPolicy, Project
from wasm_agents.routing import Budget, Refusal, route

PROJECT = Project(
    {
        "agent": AgentSpec("agent", "agent"),
        "parser": AgentSpec("parser", "agent-parser", may_delegate_to=("writer",)),
        "writer": AgentSpec("writer", "agent-writer", may_delegate_to=()),
    },
    ChainPolicy(order=("agent", "parser", "writer"), max_depth=2, max_hops=5, wall_time_s=10),
)
ROOM = Budget(hops_started=1, now=0.0, chain_deadline=10.0, caller_deadline=10.0)


def refused(stack: tuple[str, ...], to: str | None, budget: Budget = ROOM) -> tuple[ErrorKind, str]:
    with pytest.raises(Refusal) as caught:
        route(PROJECT, stack, to, budget)
    return caught.value.kind, str(caught.value)


def test_without_a_target_the_next_agent_in_order_is_chosen():
    assert route(PROJECT, ("agent",), None, ROOM) == "parser"
    assert route(PROJECT, ("agent", "parser"), None, ROOM) == "writer"


def test_a_named_target_is_taken_when_the_policy_allows_it():
    assert route(PROJECT, ("agent",), "writer", ROOM) == "writer"


@pytest.mark.parametrize("stack, to, kind, words", [
    (("agent", "parser", "writer"), None, ErrorKind.END_OF_CHAIN, "agent 'writer' is the last in the chain"),
    (("agent",), "ghost", ErrorKind.UNKNOWN_AGENT, "agent 'agent' delegated to unknown agent 'ghost'"),
    (("agent", "writer"), "parser", ErrorKind.FORBIDDEN, "agent 'writer' may not delegate to 'parser'"),
    (("agent", "parser"), "agent", ErrorKind.FORBIDDEN, "agent 'parser' may not delegate to 'agent'"),
    (("agent", "parser", "writer"), "agent", ErrorKind.FORBIDDEN, "may not delegate"),
])
def test_refusals_name_the_rule(stack, to, kind, words):
    got_kind, message = refused(stack, to)
    assert got_kind == kind and words in message


def test_a_cycle_is_refused_with_its_path():
    cyclic = Project(PROJECT.agents | {"parser": AgentSpec("parser", "agent-parser")}, PROJECT.policy)
    with pytest.raises(Refusal, match="delegation cycle refused: agent -> parser -> agent") as caught:
        route(cyclic, ("agent", "parser"), "agent", ROOM)
    assert caught.value.kind == ErrorKind.CYCLE


def test_depth_hops_and_deadlines_are_budgets():
    deep = Project(PROJECT.agents, ChainPolicy(order=PROJECT.policy.order, max_depth=1))
    with pytest.raises(Refusal, match="exceeds max depth 1"):
        route(deep, ("agent", "parser"), "writer", ROOM)
    assert refused(("agent",), "parser", Budget(5, 0.0, 10.0, 10.0))[0] == ErrorKind.HOP_BUDGET_EXCEEDED
    assert refused(("agent",), "parser", Budget(1, 10.0, 10.0, 20.0)) == (ErrorKind.TIMEOUT, "chain wall-time budget of 10 s used up")
    kind, message = refused(("agent",), "parser", Budget(1, 5.0, 10.0, 4.0))
    assert kind == ErrorKind.TIMEOUT and "agent 'agent' is past its wall-time limit" in message


def test_a_huge_target_name_is_not_copied_into_the_message():
    _, message = refused(("agent",), "x" * 1_000_000)
    assert len(message) < 300
