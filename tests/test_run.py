"""Running chains in real sandboxes: results, limits, policy, events, concurrency."""

import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner


@pytest.fixture(scope="module")
def example_runner(example_dist):
    with Runner(example_dist) as runner:
        yield runner


def test_example_chain_multiplies_through_the_helper(example_runner):
    result = example_runner.run({"op": "multiply", "a": 6, "b": 7})
    assert result.ok and result.result == 42
    assert [(hop.agent, hop.depth) for hop in result.hops] == [("multiplier", 1), ("agent", 0)]
    assert result.hops[0].parent_span_id == result.hops[1].span_id


def test_example_root_adds_by_itself(example_runner):
    result = example_runner.run({"op": "add", "a": 2, "b": 3})
    assert result.ok and result.result == 5 and len(result.hops) == 1


def test_example_uses_its_vendored_dependency(example_runner):
    assert example_runner.run({"op": "weekday", "date": "2026-11-28"}).result == "Saturday"


def test_helper_failure_is_reported_where_it_started(example_runner):
    result = example_runner.run({"op": "divide", "a": 1, "b": 0})
    assert not result.ok
    assert result.error["agent"] == "multiplier" and result.error["type"] == "ValueError"
    assert "cannot handle op 'divide'" in result.error["message"]


def test_config_carries_task_agent_and_settings(testbed_runner):
    result = testbed_runner.run({"op": "config"})
    assert result.result == {"settings": {"greeting": "hello"}, "agent": "agent"}


def test_guest_marker_environment_is_the_one_vendoring_assumes(testbed_runner):
    from wasm_agents.builder.vendor import GUEST_MARKERS

    assert testbed_runner.run({"op": "markers"}).result == GUEST_MARKERS


def run_error(runner, task):
    result = runner.run(task)
    assert not result.ok, result
    return result.error


@pytest.mark.parametrize("task, kind, words", [
    ({"op": "loop"}, "timeout", "wall-time limit of 5 s"),
    ({"op": "sleep", "seconds": 60}, "timeout", "wall-time limit of 5 s"),
    ({"op": "memory"}, "memory", "memory limit of 64 MiB"),
    ({"op": "flood"}, "output", "output limit of 100000 bytes"),
    ({"op": "recurse"}, "stack", "call stack exhausted"),
    ({"op": "raise"}, "ValueError", "probe failed on purpose"),
    ({"op": "not-json"}, "NotSerializable", "not JSON"),
    ({"op": "exit"}, "Exit", "exited"),
])
def test_each_limit_and_failure_has_its_own_error(testbed_runner, task, kind, words):
    error = run_error(testbed_runner, task)
    assert error["type"] == kind and words in error["message"] and error["agent"] == "agent"
    # The host lives on, and the next chain is unaffected.
    assert testbed_runner.run({"op": "add", "a": 1, "b": 1}).result == 2


def test_sleeping_guest_is_stopped_at_its_deadline_and_counted_until_its_call_returns(testbed_runner):
    guests = testbed_runner.guests
    start = time.monotonic()
    error = run_error(testbed_runner, {"op": "sleep", "seconds": 8})
    assert error["type"] == "timeout" and "blocked in a host call" in error["message"]
    assert time.monotonic() - start < 8  # stopped at its 5 s limit, not when the sleep ends
    lingering = guests.lingering
    assert lingering >= 1
    while guests.lingering >= lingering and time.monotonic() - start < 30:
        time.sleep(0.1)
    assert guests.lingering < lingering  # the WASI sleep returned, and the guest's thread let go of it


def test_fuel_budget_ends_a_metered_agent(testbed_runner):
    result = testbed_runner.run({"op": "to", "target": "fuel", "inner": {"op": "loop"}})
    assert result.error["type"] == "fuel" and result.error["agent"] == "fuel"
    fuel_hop = next(hop for hop in result.hops if hop.agent == "fuel")
    assert fuel_hop.fuel_used == 200_000_000
    ok = testbed_runner.run({"op": "to", "target": "fuel", "inner": {}})
    assert ok.result == {"fuel": "ok"} and 0 < next(h for h in ok.hops if h.agent == "fuel").fuel_used < 200_000_000


@pytest.mark.parametrize("task, kind, words", [
    ({"op": "to", "target": "ghost", "inner": {}}, "UnknownAgent", "unknown agent 'ghost'"),
    ({"op": "to", "target": "fuel", "inner": {"op": "to", "target": "echo", "inner": {}}}, "Forbidden", "'fuel' may not delegate to 'echo'"),
    ({"op": "to", "target": "echo", "inner": {"op": "to", "target": "agent", "inner": {}}}, "Cycle", "agent -> echo -> agent"),
    ({"op": "next", "inner": {"op": "next", "inner": {}}}, "DepthExceeded", "exceeds max depth 1"),
])
def test_delegation_policy_refusals_name_the_agents(testbed_runner, task, kind, words):
    error = run_error(testbed_runner, task)
    assert error["type"] == kind and words in error["message"]


def test_refusal_reaches_the_guest_as_an_exception_it_can_catch(testbed_runner):
    result = testbed_runner.run({"op": "catch", "target": "ghost", "inner": {}})
    assert result.result["caught"] == "UnknownAgent"
    remote = testbed_runner.run({"op": "catch", "target": "echo", "inner": {"op": "multiply", "a": "x", "b": None}})
    assert remote.result["caught"] == "TypeError" and remote.result["agent"] == "echo"


def test_chain_of_responsibility_passes_to_the_next_agent(testbed_runner):
    result = testbed_runner.run({"op": "next", "inner": {"op": "multiply", "a": 3, "b": 4}})
    assert result.result == 12 and result.hops[0].agent == "echo"


def test_data_dir_is_readable_and_read_only_and_scratch_is_private(testbed_runner):
    assert testbed_runner.run({"op": "to", "target": "echo", "inner": {"op": "data"}}).result.startswith("data shipped")
    assert run_error(testbed_runner, {"op": "to", "target": "echo", "inner": {"op": "write-data"}})["agent"] == "echo"
    for _ in range(2):  # fresh for every invocation: nothing from the previous one
        scratch = testbed_runner.run({"op": "to", "target": "echo", "inner": {"op": "scratch"}})
        assert scratch.result == {"before": [], "read": "written"}


def test_deny_by_default(testbed_runner, monkeypatch):
    monkeypatch.setenv("WASM_AGENTS_CANARY", "leaked")
    assert testbed_runner.run({"op": "env"}).result == {}
    for path in ("/", "/etc", "/data", "/scratch"):
        assert run_error(testbed_runner, {"op": "listdir", "path": path})["type"] == "FileNotFoundError"
    assert run_error(testbed_runner, {"op": "read", "path": "/etc/passwd"})["type"] == "FileNotFoundError"


def test_events_describe_every_step(testbed_dist):
    stream = io.StringIO()
    with Runner(testbed_dist, Events(stream, "debug")) as runner:
        runner.run({"op": "next", "inner": {"op": "multiply", "a": 2, "b": 2}})
        runner.run({"op": "log"})
        runner.run({"op": "raise"})
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    names = [event["event.name"] for event in events]
    assert names[:5] == ["chain.start", "agent.start", "agent.start", "agent.end", "agent.end"]
    start_root, start_echo = events[1], events[2]
    assert start_echo["parent_span_id"] == start_root["span_id"] and start_echo["trace_id"] == start_root["trace_id"]
    log = next(e for e in events if e["event.name"] == "agent.log")
    assert log["severity_text"] == "WARNING" and log["body"] == "probe says" and log["attributes"] == {"answer": 42}
    assert [e["text"] for e in events if e["event.name"] == "agent.stdout"] == ["to stdout"]  # one event per line
    assert [e["text"] for e in events if e["event.name"] == "agent.stderr"] == ["to stderr"]
    failed = [e for e in events if e["event.name"] == "agent.end" and e["outcome"] == "error"]
    assert failed[0]["exception.type"] == "ValueError"
    assert 'main.py", line' in failed[0]["exception.stacktrace"] and "probe failed on purpose" in failed[0]["exception.stacktrace"]
    assert all({"timestamp", "severity_text", "event.name"} <= set(e) for e in events)


def test_200_concurrent_chains_are_all_correct_and_present(example_runner):
    tasks = [{"op": "multiply" if i % 2 else "add", "a": i, "b": 3} for i in range(200)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(example_runner.run, tasks))
    assert [r.result for r in results] == [i * 3 if i % 2 else i + 3 for i in range(200)]
    assert len({r.run_id for r in results}) == 200


def test_hostile_chains_do_not_disturb_good_ones_running_beside_them(testbed_runner):
    tasks = [{"op": "loop"}, {"op": "memory"}, {"op": "flood"}] + [{"op": "add", "a": i, "b": 0} for i in range(30)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(testbed_runner.run, tasks))
    assert [r.error["type"] for r in results[:3]] == ["timeout", "memory", "output"]
    assert [r.result for r in results[3:]] == list(range(30))


@pytest.mark.parametrize("installed, platform, words", [
    ("49.0.0", "linux", "older than 50.0.1"),
    ("50.0.1", "win32", "GHSA-f2pq-268w-886c"),
])
def test_vulnerable_wasmtime_is_refused(installed, platform, words):
    from wasm_agents.errors import WasmAgentsError
    from wasm_agents.sandbox.engine import check_wasmtime

    with pytest.raises(WasmAgentsError, match=words):
        check_wasmtime(installed, platform)
    check_wasmtime("50.0.1", "linux")
    check_wasmtime("50.0.3", "win32")


@pytest.mark.parametrize("name", ["WorkerLost", "timeout", "HopBudgetExceeded", "ReservedErrorName"])
def test_a_helper_cannot_raise_a_host_error_type(testbed_runner, name):
    error = run_error(testbed_runner, {"op": "to", "target": "echo", "inner": {"op": "raise-as", "name": name}})
    assert error["type"] == "ReservedErrorName" and error["agent"] == "echo"
    assert f"named like a host error ({name})" in error["message"]


def test_a_helper_cannot_shift_the_blame_with_its_own_delegationerror(testbed_runner):
    # echo raises a class it named DelegationError without delegating: the failure is echo's own, not the root's.
    error = run_error(testbed_runner, {"op": "to", "target": "echo", "inner": {"op": "raise-as", "name": "DelegationError"}})
    assert (error["type"], error["agent"], error["message"]) == ("DelegationError", "echo", "raised by echo")


def test_a_failure_passed_up_the_chain_is_reported_where_it_started(testbed_runner):
    task = {"op": "to", "target": "echo", "inner": {"op": "to", "target": "ghost", "inner": {}}}
    error = run_error(testbed_runner, task)
    assert (error["type"], error["agent"]) == ("UnknownAgent", "echo")


def run_code(runner, code):
    result = runner.run({"op": "exec", "code": code})
    assert result.ok, result.error
    return result.result


def test_a_lone_surrogate_for_the_host_raises_in_python_instead_of_aborting(testbed_runner):
    code = """
import wit_world
caught = []
for call in (lambda: wit_world.log("info", "\\ud800"), lambda: wit_world.host_call("delegate", "\\udfff")):
    try:
        call()
    except UnicodeEncodeError as error:
        caught.append(error.reason)
result = caught
"""
    assert run_code(testbed_runner, code) == ["surrogates not allowed"] * 2


def test_a_guest_that_aborts_anyway_is_told_why(testbed_runner):
    # Past the guard, straight into the host import: the guest aborts, and the error says where and why.
    error = run_error(testbed_runner, {"op": "exec", "code": "import wit_world; wit_world.log.__closure__[0].cell_contents('info', '\\ud800')"})
    assert error["type"] == "Trap"
    assert "the guest aborted in abort < wit_dylib_pop_string < adapter log" in error["message"]
    assert error["message"].endswith("a string it passed to the host is not valid Unicode")


def test_name_lookups_fail_at_once_and_process_time_counts_up(testbed_runner):
    code = """
import socket, time
lookups = []
for lookup in (lambda: socket.getaddrinfo("example.com", 443), lambda: socket.gethostbyname("localhost"), socket.getfqdn):
    try:
        lookups.append(lookup())
    except socket.gaierror as error:
        lookups.append([error.errno, str(error)])
start = time.process_time()
sum(range(100_000))
result = {"lookups": lookups, "process_time": [start, time.process_time()]}
"""
    answer = run_code(testbed_runner, code)
    assert answer["lookups"][:2] == [[socket.EAI_FAIL, f"[Errno {socket.EAI_FAIL}] Non-recoverable error: no name resolution in the wasm-agents sandbox"]] * 2
    assert isinstance(answer["lookups"][2], str)  # getfqdn falls back to the name itself
    start, end = answer["process_time"]
    assert 0 <= start < end < 5


def test_a_deep_tree_left_in_scratch_is_removed_after_the_invocation(testbed_runner):
    from wasm_agents.sandbox.scratch import _process_folder

    depth = testbed_runner.run({"op": "to", "target": "echo", "inner": {"op": "deep-scratch", "depth": 1500}}).result
    assert depth >= 1000
    deadline = time.monotonic() + 30  # removed on the invocation's thread, once the chain has its answer
    while any((folder / "d").exists() for folder in _process_folder().iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [folder for folder in _process_folder().iterdir() if (folder / "d").exists()] == []  # the others: the warm pool's


@pytest.fixture(scope="module")
def watched(testbed_dist):
    """A Runner over the testbed whose events are kept, at debug level."""
    stream = io.StringIO()
    with Runner(testbed_dist, Events(stream, "debug"), warm=0) as runner:
        yield runner, stream


def events_of(stream: io.StringIO, mark: int) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue()[mark:].splitlines()]


def test_everything_a_guest_makes_the_host_emit_fits_its_budget(watched):
    # 10 000 empty log records are 20 kB of guest output but would be ~2.5 MB of events; refused delegations
    # to a 100 kB agent name are counted with the name as the events quote it.
    runner, stream = watched
    code = """
import wit_world
from wasm_agents_sdk import DelegationError, delegate
for _ in range(10_000):
    wit_world.log("info", "")
refused = 0
for _ in range(50):
    try:
        delegate({}, to="x" * 100_000)
    except DelegationError:
        refused += 1
result = refused
"""
    mark = len(stream.getvalue())
    assert runner.run({"op": "exec", "code": code}).result == 50
    events = events_of(stream, mark)
    root_span = next(e["span_id"] for e in events if e["event.name"] == "agent.start")
    caused = [e for e in events if e.get("span_id") == root_span and e["event.name"] in ("agent.log", "delegation.refused")]
    assert sum(len(json.dumps(e)) + 1 for e in caused) <= 100_000  # the testbed root's output_bytes
    [dropped] = [e for e in events if e["event.name"] == "agent.events.dropped"]
    assert dropped["dropped"] == 10_050 - len(caused) and "[limits] output_bytes" in dropped["message"]
    assert all(len(e.get("target", "")) < 200 for e in caused)
    assert len(stream.getvalue()) - mark < 200_000


# A guest can hand the host any text as its result: the harness's own json.dumps is the guest's to replace.
LOOSE_RESULT = "import json\nstrict = json.dumps\njson.dumps = lambda value, **options: {text!r}\nresult = 0\n"


@pytest.mark.parametrize("text, words", [
    ("NaN", "result refused: not strict JSON: NaN is not JSON"),
    ('{"a": [1, -Infinity]}', "result refused: not strict JSON: -Infinity is not JSON"),
    ("1e400", "result refused: not strict JSON: 1e400 is too large for a JSON number"),
    ("[0.5, 1E+309]", "result refused: not strict JSON: 1E+309 is too large for a JSON number"),
    ("[0.5, " + "9" * 400 + ".5]", "result refused: not strict JSON: 999"),  # no exponent: 400 digits before the point
    ("[1" + "0" * 300 + "e99]", "result refused: not strict JSON: 1000"),  # 301 digits and a 2-digit exponent: 1e399
    ("9" * 5072, "result refused: an integer of more than 4300 digits, which JSON readers cannot carry"),
    ("[" * 988 + "]" * 988, "result refused: nested more than 100 deep, the limit ([limits] json_depth in agent.toml)"),
    ("[1,", "result refused: not strict JSON: Expecting value"),
])
def test_a_result_the_host_cannot_take_strictly_is_refused_with_the_reason(testbed_runner, text, words):
    error = run_error(testbed_runner, {"op": "exec", "code": LOOSE_RESULT.format(text=text)})
    assert error["type"] == "NotSerializable" and error["message"].startswith(words) and error["agent"] == "agent"
    assert testbed_runner.run({"op": "add", "a": 1, "b": 2}).result == 3


def test_a_result_over_the_agents_limit_is_refused_before_it_is_decoded(testbed_runner):
    # The testbed root has 64 MiB: an eighth of it, 8 MiB, is its result limit.
    error = run_error(testbed_runner, {"op": "exec", "code": "result = [[]] * 3_000_000"})
    assert error["message"] == (
        "result refused: 12000000 bytes, more than the limit of 8388608 ([limits] result_bytes in agent.toml)"
    )


def test_a_delegated_task_must_be_strict_json_too(testbed_runner):
    code = """
import wit_world
from componentize_py_types import Err
try:
    wit_world.host_call("delegate", '{"task": {"x": NaN}, "to": "echo"}')
except Err as refusal:
    result = refusal.value
"""
    refusal = json.loads(run_code(testbed_runner, code))
    assert refusal == {"type": "BadRequest", "message": "agent 'agent' sent a malformed delegation: not strict JSON: NaN is not JSON"}


def test_values_are_counted_before_anything_is_decoded(testbed_runner):
    # 400 000 small numbers are 1.2 MB of JSON, under the byte limits, but past the default of 250 000 values.
    error = run_error(testbed_runner, {"op": "exec", "code": "result = [0] * 400_000"})
    assert error["message"] == "result refused: about 400001 values, more than the limit of 250000 ([limits] json_items in agent.toml)"
    code = """
import wit_world
from componentize_py_types import Err
try:
    wit_world.host_call("delegate", '{"task": [' + '"a,b[c{",' * 300_000 + '0], "to": "echo"}')
except Err as refusal:
    result = refusal.value
"""
    # Commas and brackets inside strings are not values: counted as 900 000 more, they would be 1 200 004.
    assert "about 300004 values" in json.loads(run_code(testbed_runner, code))["message"]


def test_limits_of_json_are_per_agent_with_defaults_from_memory():
    from wasm_agents.project import Limits

    assert (Limits().result_limit, Limits().payload_limit) == (16 << 20, 16 << 20)
    assert (Limits(memory_mb=32).result_limit, Limits(memory_mb=32, payload_bytes=100).payload_limit) == (4 << 20, 100)


def test_an_agent_queued_behind_others_loses_none_of_its_wall_time(testbed_dist):
    # One guest slot, held 2 s each by three sleepers: the chain queued behind them for 6 s still gets its own 5 s.
    from wasm_agents.sandbox.guests import Guests

    with Runner(testbed_dist, warm=0, guests=Guests(1)) as runner, ThreadPoolExecutor(4) as pool:
        sleepers = [pool.submit(runner.run, {"op": "sleep", "seconds": 2}) for _ in range(3)]
        time.sleep(0.2)
        queued = pool.submit(runner.run, {"op": "to", "target": "echo", "inner": {"op": "multiply", "a": 2, "b": 3}})
        assert [sleeper.result().result for sleeper in sleepers] == ["slept"] * 3
        result = queued.result()
        assert result.ok and result.result == 6, result.error


def echo_code(runner, code):
    return runner.run({"op": "to", "target": "echo", "inner": {"op": "exec", "code": code}})


@pytest.mark.parametrize("abuse, code", [
    ("100 MiB written", "f = open('/scratch/big', 'wb')\nfor _ in range(100):\n    f.write(b'x' * (1 << 20))\nf.close()\nresult = 'wrote'"),
    ("a 1 TiB sparse file", "f = open('/scratch/sparse', 'wb')\nf.seek(1 << 40)\nf.write(b'x')\nf.close()\nresult = 'wrote'"),
    ("a deleted file still open", "import os\nf = open('/scratch/gone', 'wb')\nos.unlink('/scratch/gone')\nfor _ in range(40):\n    f.write(b'x' * (1 << 20))\nresult = 'wrote'"),
    ("2500 empty files", "for i in range(2500):\n    open(f'/scratch/{i}', 'w').close()\nresult = 'wrote'"),
])
def test_scratch_is_kept_within_its_quota(testbed_runner, abuse, code):
    # The echo agent's scratch_mb is 8: whatever way it goes past it, its invocation fails, saying which setting.
    result = echo_code(testbed_runner, code)
    assert result.error == {"type": "scratch", "message": "scratch limit of 8 MiB exceeded ([files] scratch_mb in agent.toml)", "agent": "echo"}, abuse
    assert echo_code(testbed_runner, "open('/scratch/small', 'wb').write(b'x' * (1 << 20))\nresult = 'ok'").result == "ok"


def test_a_guest_past_its_scratch_quota_holds_no_more_disk_than_one_poll_allows(testbed_runner):
    # It keeps writing after its quota is passed: its files are emptied at every poll, so the disk stays free.
    from wasm_agents.sandbox.scratch import _process_folder, usage

    peak = []

    def watch_disk():
        while not done.is_set():
            peak.append(max([usage(str(folder), 1 << 40) for folder in _process_folder().iterdir()] or [0]))
            time.sleep(0.005)

    done = threading.Event()
    watcher = threading.Thread(target=watch_disk)
    watcher.start()
    code = "import time\nf = open('/scratch/big', 'wb')\nend = time.monotonic() + 1\nwhile time.monotonic() < end:\n    f.write(b'x' * (1 << 20))\nresult = 'wrote'"
    result = echo_code(testbed_runner, code)
    done.set()
    watcher.join()
    assert result.error["type"] == "scratch"
    assert max(peak) < 256 << 20  # a second of writing at full speed would be gigabytes


def test_guest_logging_records_keep_their_level(watched):
    runner, stream = watched
    code = """
import logging
logging.getLogger("parser").warning("careful: %d rows skipped", 3)
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
logging.getLogger("parser").info("parsed")
logging.getLogger("parser").error("failed once")
result = "logged"
"""
    mark = len(stream.getvalue())
    assert runner.run({"op": "exec", "code": code}).result == "logged"
    logs = [(e["severity_text"], e["body"]) for e in events_of(stream, mark) if e["event.name"] == "agent.log"]
    assert logs == [("WARNING", "careful: 3 rows skipped"), ("INFO", "parser: parsed"), ("ERROR", "parser: failed once")]
    assert not [e for e in events_of(stream, mark) if e["event.name"] == "agent.stderr"]
