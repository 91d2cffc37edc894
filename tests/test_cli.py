"""The `wasm-agents` command as a user runs it: real processes, real dists."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from terminal import on_terminal
from wasm_agents.builder.discover import discover

CLI = [sys.executable, "-m", "wasm_agents"]


def wasm_agents(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.parametrize("command", ["build", "verify", "inspect", "init", "new", "run", "keygen"])
def test_every_command_has_help(command):
    done = wasm_agents(command, "--help")
    assert done.returncode == 0 and "Usage:" in done.stdout


def test_run_prints_one_json_object_with_the_result(example_dist):
    done = wasm_agents("run", str(example_dist), "--task", '{"op": "multiply", "a": 6, "b": 7}')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["result"] == 42
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert {"agent.log", "agent.end", "chain.end"} <= {e["event.name"] for e in events}


def test_events_go_to_a_file_when_asked(example_dist, tmp_path):
    done = wasm_agents("run", str(example_dist), "--task", '{"op": "add", "a": 2, "b": 3}', "--events", str(tmp_path / "ev.jsonl"))
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == 5 and done.stderr == ""
    assert "chain.end" in (tmp_path / "ev.jsonl").read_text()


def test_task_file_with_concurrency_gives_one_line_per_task_in_order(example_dist, tmp_path):
    tasks = [{"id": f"t{i}", "op": "multiply", "a": i, "b": 2} for i in range(20)] + [{"op": "nope"}]
    (tmp_path / "tasks.jsonl").write_text("\n".join(json.dumps(t) for t in tasks) + "\n")
    done = wasm_agents("run", str(example_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "--concurrency", "4", "--log-level", "error")
    assert done.returncode == 1  # one agent failed
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["index"] for line in lines] == list(range(21))
    assert [line.get("result") for line in lines[:20]] == [i * 2 for i in range(20)]
    assert lines[3]["id"] == "t3" and lines[20]["ok"] is False and lines[20]["error"]["agent"] == "multiplier"


@pytest.mark.parametrize("args, words", [
    (["--task", "{not json"], "--task: not valid JSON"),
    ([], "give exactly one of --task"),
])
def test_bad_task_input_is_refused_before_running(example_dist, args, words):
    done = wasm_agents("run", str(example_dist), *args)
    assert done.returncode == 2 and words in done.stderr and done.stdout == ""


def test_bad_task_file_line_is_named(example_dist, tmp_path):
    (tmp_path / "t.jsonl").write_text('{"op": "add", "a": 1, "b": 1}\n{oops\n')
    done = wasm_agents("run", str(example_dist), "--task-file", str(tmp_path / "t.jsonl"))
    assert done.returncode == 2 and "t.jsonl:2: not valid JSON" in done.stderr and done.stdout == ""


def test_missing_dist_is_refused(tmp_path):
    done = wasm_agents("run", str(tmp_path / "nowhere"), "--task", "{}")
    assert done.returncode == 3 and "no such dist directory" in done.stderr


def test_one_flipped_byte_in_any_file_refuses_the_run_and_names_the_file(example_dist, tmp_path):
    files = sorted(p.relative_to(example_dist) for p in example_dist.rglob("*") if p.is_file())
    for relative in files:
        dist = tmp_path / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        shutil.copytree(example_dist, dist)
        target = dist / relative
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        done = wasm_agents("run", str(dist), "--task", '{"op": "add", "a": 1, "b": 1}', "--log-level", "debug")
        assert done.returncode == 3, relative
        assert str(relative.as_posix()) in done.stderr or "manifest.json" in done.stderr, (relative, done.stderr)
        assert "agent.start" not in done.stderr and done.stdout == ""
        verified = wasm_agents("verify", str(dist))
        assert verified.returncode == 3 and relative.as_posix() in verified.stderr or "manifest.json" in verified.stderr


def test_verify_and_inspect_a_good_dist(example_dist):
    assert wasm_agents("verify", str(example_dist)).returncode == 0
    done = wasm_agents("inspect", str(example_dist), "--json")
    description = json.loads(done.stdout)
    assert description["chain"]["order"] == ["agent", "multiplier"]
    assert {"name": "six", "version": "1.17.0"} in description["agents"]["agent"]["dependencies"]
    assert description["tools"]["wasmtime"].startswith("50.")
    table = wasm_agents("inspect", str(example_dist))
    assert table.returncode == 0 and "multiplier" in table.stdout


def test_new_scaffolds_an_agent_that_discovery_accepts(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "main.py").write_text("def main(config):\n    return None\n")
    done = wasm_agents("new", "summarizer", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "agent-summarizer").iterdir()} == {"main.py", "requirements.txt", "agent.toml"}
    assert "summarizer" in discover(tmp_path).agents
    again = wasm_agents("new", "summarizer", str(tmp_path))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert wasm_agents("new", "Bad/Name", str(tmp_path)).returncode == 2


def test_build_errors_are_one_line_with_exit_2(tmp_path):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "main.py").write_text("def main(config)\n")
    done = wasm_agents("build", str(tmp_path), "--quiet")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "agent/main.py:1: syntax error" in done.stderr


@pytest.mark.parametrize("project", [{}, {"agents": "x"}, {"agents": {}, "chain": {"order": []}}])
def test_a_dist_whose_project_cannot_run_is_refused_alike_by_verify_inspect_and_run(example_dist, tmp_path, project):
    dist = Path(shutil.copytree(example_dist, tmp_path / "dist"))
    manifest = json.loads((dist / "manifest.json").read_bytes())
    data = json.dumps({**manifest, "project": project}).encode()
    (dist / "manifest.json").write_bytes(data)
    (dist / "manifest.json.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")
    for command in (["verify"], ["inspect"], ["inspect", "--json"], ["run", "--task", "{}"]):
        done = wasm_agents(command[0], str(dist), *command[1:])
        assert done.returncode == 3, (command, done.stderr)
        assert done.stderr.startswith("error: manifest.json: project") and "Traceback" not in done.stderr, (command, done.stderr)
        assert done.stdout == ""


def test_a_dist_missing_an_agents_component_is_refused_by_verify(example_dist, tmp_path):
    dist = Path(shutil.copytree(example_dist, tmp_path / "dist"))
    manifest = json.loads((dist / "manifest.json").read_bytes())
    del manifest["files"]["components/multiplier.wasm"]
    (dist / "components" / "multiplier.wasm").unlink()
    data = json.dumps(manifest).encode()
    (dist / "manifest.json").write_bytes(data)
    (dist / "manifest.json.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")
    done = wasm_agents("verify", str(dist))
    assert done.returncode == 3
    assert "components/multiplier.wasm: not listed in manifest.json (the component of agent 'multiplier')" in done.stderr


def test_a_task_with_nan_is_refused_with_its_line(example_dist, tmp_path):
    (tmp_path / "t.jsonl").write_text('{"op": "add", "a": 1, "b": 1}\n{"op": "add", "a": NaN, "b": 1}\n')
    done = wasm_agents("run", str(example_dist), "--task-file", str(tmp_path / "t.jsonl"))
    assert done.returncode == 2 and "t.jsonl:2: not valid JSON: NaN is not JSON" in done.stderr and done.stdout == ""


def result_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_output_gets_each_result_once_and_resume_runs_only_the_rest(example_dist, tmp_path):
    tasks = [{"id": f"t{i}", "op": "multiply", "a": i, "b": 3} for i in range(12)]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    args = ("run", str(example_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "--log-level", "error", "-j", "3")
    first = wasm_agents(*args, "--output", str(tmp_path / "all.jsonl"))
    assert first.returncode == 0
    stdout, saved = result_lines(first.stdout), result_lines((tmp_path / "all.jsonl").read_text())
    assert [line["index"] for line in stdout] == list(range(12))  # stdout keeps task order
    assert sorted(json.dumps(line, sort_keys=True) for line in saved) == sorted(json.dumps(line, sort_keys=True) for line in stdout)

    # A crash left five lines and half of a sixth: resume keeps the five and runs the other seven.
    kept = (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "part.jsonl").write_text("".join(kept[:5]) + kept[5][:20])
    refused = wasm_agents(*args, "--output", str(tmp_path / "part.jsonl"))
    assert refused.returncode == 2 and "already holds 5 result lines: add --resume" in refused.stderr
    resumed = wasm_agents(*args, "--output", str(tmp_path / "part.jsonl"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    again = {line["index"] for line in result_lines(resumed.stdout)}
    before = {line["index"] for line in result_lines("".join(kept[:5]))}
    assert again == set(range(12)) - before
    union = result_lines((tmp_path / "part.jsonl").read_text())
    assert sorted(line["index"] for line in union) == list(range(12))
    assert all(line["result"] == 3 * line["index"] and line["id"] == f"t{line['index']}" for line in union)
    assert wasm_agents(*args, "--output", str(tmp_path / "part.jsonl"), "--resume").stdout == ""  # nothing left to run


def test_resume_refuses_a_results_file_of_another_task_file(example_dist, tmp_path):
    (tmp_path / "tasks.jsonl").write_text('{"id": "a", "op": "add", "a": 1, "b": 1}\n')
    (tmp_path / "out.jsonl").write_text('{"index": 0, "id": "b", "ok": true}\n')
    done = wasm_agents("run", str(example_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "--output", str(tmp_path / "out.jsonl"), "--resume")
    assert done.returncode == 2 and "out.jsonl:1: task 0 has id 'b' here but 'a' in the task file" in done.stderr


def test_a_batch_killed_halfway_and_resumed_has_exactly_one_line_per_task(testbed_dist, tmp_path):
    tasks = [{"id": i, "op": "sleep", "seconds": 0.2} for i in range(16)]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    out = tmp_path / "out.jsonl"
    args = [*CLI, "run", str(testbed_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "--output", str(out), "--log-level", "error", "-j", "2"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while (not out.exists() or out.read_text().count("\n") < 4) and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()  # SIGKILL: no cleanup, no flush
    process.wait()
    before = result_lines(out.read_text()[: out.read_text().rfind("\n") + 1])
    assert 4 <= len(before) < 16
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    lines = result_lines(out.read_text())
    assert sorted(line["id"] for line in lines) == list(range(16)) and all(line["result"] == "slept" for line in lines)


def test_one_result_the_host_refuses_costs_only_its_own_line(testbed_dist, tmp_path):
    loose = "import json, sys\nsys.set_int_max_str_digits(0)\njson.dumps = lambda value, **options: '9' * 5072\nresult = 0\n"
    deep = "result = []\nfor _ in range(988):\n    result = [result]\n"
    tasks = [{"op": "exec", "code": loose}, {"op": "exec", "code": deep}, {"op": "add", "a": 1, "b": 1}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(task) + "\n" for task in tasks))
    done = wasm_agents("run", str(testbed_dist), "--task-file", str(tmp_path / "t.jsonl"), "--log-level", "error")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = result_lines(done.stdout)
    assert [(line["index"], line["ok"]) for line in lines] == [(0, False), (1, False), (2, True)]
    assert "an integer of more than 4300 digits" in lines[0]["error"]["message"]
    assert "nested more than 100 deep" in lines[1]["error"]["message"] and lines[2]["result"] == 2


def test_run_on_a_project_folder_points_at_its_dist(example_project):
    done = wasm_agents("run", str(example_project), "--task", "{}")
    assert done.returncode == 2 and f"this is a project folder, not a dist; did you mean {example_project / 'dist'}?" in done.stderr


def test_tasks_from_stdin_and_results_as_they_finish(testbed_dist):
    tasks = [{"id": "slow", "op": "sleep", "seconds": 1}, {"id": "fast", "op": "add", "a": 1, "b": 1}]
    stdin = "".join(json.dumps(task) + "\n" for task in tasks)
    args = ("run", str(testbed_dist), "--task-file", "-", "-j", "2", "--log-level", "error")
    ordered = wasm_agents(*args, input=stdin)
    assert [line["id"] for line in result_lines(ordered.stdout)] == ["slow", "fast"]
    unordered = wasm_agents(*args, "--unordered", input=stdin)
    assert [line["id"] for line in result_lines(unordered.stdout)] == ["fast", "slow"]


def test_inspect_tables_wrap_rather_than_cut_at_80_columns(example_dist):
    done = wasm_agents("inspect", str(example_dist), env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0 and "…" not in done.stdout  # rich cuts a cell with an ellipsis; folded, it is whole
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_init_makes_a_project_that_builds_and_runs(tmp_path):
    made = wasm_agents("init", str(tmp_path / "hello"))
    assert made.returncode == 0 and f"wasm-agents build {tmp_path / 'hello'}" in made.stdout
    assert wasm_agents("build", str(tmp_path / "hello"), "-q").returncode == 0
    done = wasm_agents("run", str(tmp_path / "hello" / "dist"), "--task-file", str(tmp_path / "hello" / "tasks.jsonl"), "--log-level", "error")
    assert done.returncode == 0
    assert [line["result"]["longest"] for line in result_lines(done.stdout)] == ["Agents", "WebAssembly"]
    again = wasm_agents("init", str(tmp_path / "hello"))
    assert again.returncode == 2 and "exists and is not an empty folder" in again.stderr


def test_a_batch_ends_with_a_summary_line_on_a_terminal_only(testbed_dist, tmp_path):
    tasks = [{"op": "add", "a": 1, "b": 1}, {"op": "raise"}, {"op": "add", "a": 2, "b": 2}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(task) + "\n" for task in tasks))
    args = [*CLI, "run", str(testbed_dist), "--task-file", str(tmp_path / "t.jsonl"), "--log-level", "error"]
    code, stdout, terminal = on_terminal(args)
    assert code == 1 and len(result_lines(stdout)) == 3
    assert re.search(r"3 tasks: 2 ok, 1 failed in [\d.]+ s \(chain p50 \d+ ms, p95 \d+ ms\)", terminal), terminal[-500:]
    piped = wasm_agents(*args[3:])  # stderr a pipe: nothing but what it had
    assert "tasks:" not in piped.stderr
