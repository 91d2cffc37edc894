"""Abuse of the host imports, called straight through `wit_world` by a hostile guest.

A refusal arrives in the guest as componentize_py_types.Err whose value is a JSON object {"type", "message"};
the probe reports it as {"error": "Err", "refusal": {...}}. After each abuse the host must still run chains.
"""

import pytest

from .conftest import healthy, probe

MAX = 16 * 1024 * 1024


def refusal(runner, name: str, payload: str) -> dict:
    outcome = probe(runner, "host-call", [name, payload])
    assert outcome.get("error") == "Err", f"the host accepted it: {outcome}"
    return outcome["refusal"]


def test_unknown_call_name(hostile_runner):
    assert refusal(hostile_runner, "exec", "{}") == {
        "type": "UnknownCall", "message": "agent 'agent' made an unknown host call 'exec'",
    }
    long_name = "x" * 10_000
    answer = refusal(hostile_runner, long_name, "{}")
    assert answer["type"] == "UnknownCall" and len(answer["message"]) < 200  # the name is truncated in the message
    assert healthy(hostile_runner)


@pytest.mark.parametrize("payload, detail", [
    ("{not json", "Expecting property name enclosed in double quotes"),
    ("", "Expecting value"),
    ('"just a string"', "string indices must be integers"),
    ("[1, 2]", "list indices must be integers"),
    ("null", "'NoneType' object is not subscriptable"),
    ('{"to": "helper"}', "'task'"),
    ('{"task": 1, "to": 5}', "'to' must be an agent name"),
    ('{"task": 1, "to": ["helper"]}', "'to' must be an agent name"),
])
def test_malformed_delegation_payloads_are_bad_requests(hostile_runner, payload, detail):
    answer = refusal(hostile_runner, "delegate", payload)
    assert answer["type"] == "BadRequest"
    assert answer["message"].startswith("agent 'agent' sent a malformed delegation: ") and detail in answer["message"]


def test_payload_over_the_cap_is_refused_before_parsing(hostile_runner):
    answer = probe(hostile_runner, "host-call-big")
    assert answer["error"] == "Err"
    size = len('{"task": "') + 20 * 1024 * 1024 + len('"}')
    assert answer["refusal"] == {
        "type": "PayloadTooLarge", "message": f"delegation payload of {size} bytes exceeds {MAX}",
    }
    assert healthy(hostile_runner)


@pytest.mark.parametrize("to, kind, message", [
    ("ghost", "UnknownAgent", "agent 'agent' delegated to unknown agent 'ghost'"),
    ("agent", "Forbidden", "agent 'agent' may not delegate to 'agent'"),  # [delegation] allow = ["helper"]
    ("../agent", "UnknownAgent", "agent 'agent' delegated to unknown agent '../agent'"),
])
def test_delegation_outside_policy_is_refused(hostile_runner, to, kind, message):
    answer = refusal(hostile_runner, "delegate", f'{{"task": {{}}, "to": "{to}"}}')
    assert answer == {"type": kind, "message": message}


def test_cyclic_delegation_is_refused_where_it_was_attempted(hostile_runner):
    result = hostile_runner.run({"op": "helper", "inner": {"op": "back", "inner": {"op": "echo", "index": 1}}})
    assert not result.ok
    assert result.error == {
        "type": "Cycle", "message": "delegation cycle refused: agent -> helper -> agent", "agent": "helper",
    }
    assert [hop.agent for hop in result.hops] == ["helper", "agent"]  # the cycle never started a third sandbox


def test_end_of_chain_is_refused(hostile_runner):
    result = hostile_runner.run({"op": "helper", "inner": {"op": "next"}})
    assert result.result == {"caught": "EndOfChain", "message": "agent 'helper' is the last in the chain: no next agent"}


def test_hop_budget_bounds_repeated_delegation(hostile_runner):
    result = hostile_runner.run({"op": "repeat", "times": 50})
    assert result.result == {
        "done": 15, "refused": "HopBudgetExceeded", "message": "chain hop budget of 16 used up at 'agent' -> 'helper'",
    }
    assert len(result.hops) == 16  # max_hops = 16: 15 helper sandboxes and the root


def test_host_calls_keep_working_after_a_caught_refusal(hostile_runner):
    assert probe(hostile_runner, "catch-then-call") == {
        "value": ["UnknownCall", "UnknownAgent", {"echo": {"op": "echo", "n": 1}}],
    }


def test_helper_failure_surfaces_as_delegation_error_with_its_origin(hostile_runner):
    result = hostile_runner.run({"op": "helper", "inner": {"op": "raise"}})
    assert result.error["type"] == "RuntimeError" and result.error["agent"] == "helper"
    assert result.error["message"] == "helper failed on purpose"


# ---------------------------------------------------------------- log


def _guest_logs(events, mark):
    return [e for e in events.since(mark) if e.get("event.name") == "agent.log"]


@pytest.mark.parametrize("kind, severity, body, attributes", [
    ("bad-level", "INFO", "odd level", None),  # an unknown level is logged at info
    ("not-json", "INFO", "{this is not json", None),  # fields that are not JSON become the message
    ("not-object", "INFO", "[1, 2, 3]", None),
])
def test_odd_log_calls_are_normalised(hostile_runner, hostile_events, kind, severity, body, attributes):
    mark = hostile_events.mark()
    assert hostile_runner.run({"op": "log", "arg": kind}).result == "logged"
    [event] = _guest_logs(hostile_events, mark)
    assert event["severity_text"] == severity and event["body"] == body and event.get("attributes") == attributes
    assert event["agent"] == "agent"


def test_sdk_refuses_an_unknown_level_in_the_guest(hostile_runner):
    result = hostile_runner.run({"op": "log", "arg": "sdk-bad-level"})
    assert result.error["type"] == "ValueError"
    assert result.error["message"] == "log level must be one of debug, info, warning, error, got 'fatal'"


def test_a_10_mb_log_message_breaks_the_output_limit(hostile_runner, hostile_events):
    # Log records count against [limits] output_bytes (100000 here): the oversized record traps the guest
    # and is never emitted.
    mark = hostile_events.mark()
    result = hostile_runner.run({"op": "log", "arg": "huge"})
    assert result.error == {"type": "output", "message": "output limit of 100000 bytes exceeded", "agent": "agent"}
    assert _guest_logs(hostile_events, mark) == []
    assert healthy(hostile_runner)


def test_log_volume_of_one_invocation_is_bounded(hostile_runner, hostile_events):
    mark = hostile_events.mark()
    result = hostile_runner.run({"op": "log", "arg": "many", "count": 30})  # 30 records of 100 kB
    assert result.error["type"] == "output"
    emitted = sum(len(str(e.get("body", ""))) for e in _guest_logs(hostile_events, mark))
    assert emitted <= 100_000


# ---------------------------------------------------------------- unbounded JSON nesting reaches the host's json


def test_deeply_nested_host_call_payload_is_a_bad_request(hostile_runner):
    answer = probe(hostile_runner, "host-call-deep")["refusal"]
    assert answer["type"] == "BadRequest"
    assert answer["message"].startswith("agent 'agent' sent a malformed delegation: maximum recursion depth exceeded")
    assert healthy(hostile_runner)


def test_deeply_nested_log_fields_are_logged_as_text(hostile_runner, hostile_events):
    mark = hostile_events.mark()
    assert hostile_runner.run({"op": "log", "arg": "deep-json"}).result == "logged"
    [event] = _guest_logs(hostile_events, mark)
    assert event["body"] == "[" * 20_000 + "]" * 20_000
    assert healthy(hostile_runner)


def test_deeply_nested_result_is_a_chain_error(hostile_runner):
    # 1200 levels: the guest's json.dumps encodes it, the host's json.loads cannot decode it.
    result = hostile_runner.run({"op": "deep-result", "arg": 1200})
    assert result.error == {"type": "NotSerializable", "message": "result nested too deeply to decode", "agent": "agent"}
    assert healthy(hostile_runner)


def test_nesting_the_guest_cannot_encode_is_a_stack_error(hostile_runner):
    result = hostile_runner.run({"op": "deep-result", "arg": 3000})
    assert result.error == {"type": "stack", "message": "call stack exhausted (recursion too deep)", "agent": "agent"}
