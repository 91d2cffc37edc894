"""A run as a person at a terminal sees it: short event lines, tracebacks in the user's paths, a batch's progress bar.

The rendering is tested through a real pseudo-terminal running the real CLI on a built project (tests/projects/console:
agent -> parser -> leaf); the traceback rewrite and the limit hints as the pure functions they are.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project
from terminal import on_terminal as run_on_terminal
from wasm_agents.build import build
from wasm_agents.console import render, shown
from wasm_agents.hints import limit_hint
from wasm_agents.tracebacks import MAX_SOURCE_FILES, Place, readable_traceback

CLI = [sys.executable, "-m", "wasm_agents"]
CONSOLE = Path(__file__).resolve().parent / "projects" / "console"
TIME = r"\d\d:\d\d:\d\d\.\d\d\d"


@pytest.fixture(scope="module")
def console_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/projects/console built once: a root agent, a parser that warns and fails, a leaf with a 0.5 s wall time."""
    return build(copy_project(CONSOLE, tmp_path_factory.mktemp("console") / "console")).dist


def on_terminal(*args: str, stdin: str | None = None, columns: int = 120) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; return its exit code, stdout and the screen text."""
    return run_on_terminal([*CLI, *args], stdin=stdin, columns=columns)


def plain(screen: str) -> str:
    """What the terminal shows at the end, as text: `screen` played as a terminal plays it (lines, carriage returns,
    cursor up, erased lines; colors dropped), with the lines the bar drew over gone as they are from the screen."""
    rows: list[str] = [""]
    row = column = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r|\n|[^\x1b\r\n]+", screen):
        if token == "\r":
            column = 0
        elif token == "\n":
            row += 1
            rows += [""] * (row + 1 - len(rows))
        elif token.startswith("\x1b["):
            if token.endswith("A"):
                row = max(0, row - int(token[2:-1] or 1))
            elif token == "\x1b[2K":
                rows[row] = ""
        elif not token.startswith("\x1b"):
            line = rows[row].ljust(column)
            rows[row] = line[:column] + token + line[column + len(token):]
            column += len(token)
    return "\n".join(rows)


def test_a_three_hop_chain_is_short_lines_with_agents_indented(console_dist):
    code, stdout, screen = on_terminal("run", str(console_dist), "--task", '{"op": "count", "text": "three short words"}')
    assert code == 0 and json.loads(stdout)["result"] == {"words": 3}  # stdout: the one JSON result, as ever
    text = plain(screen)
    assert "\x1b[" in screen  # colored: a person is watching
    assert "{" not in text, text  # no JSON on the terminal
    *lines, summary = text.strip().splitlines()
    assert all(re.match(TIME + " ", line) for line in lines), text
    assert re.fullmatch(r"1 task: 1 ok, 0 failed in [\d.]+ s \(chain p50 \d+ ms, p95 \d+ ms\)", summary), summary
    assert re.search(TIME + r" agent +INFO +task received +op=count", text), text
    assert re.search(TIME + r"     leaf +INFO +done +[\d.]+ ms", text), text  # depth 2
    assert re.search(TIME + r"   parser +INFO +done +[\d.]+ ms", text), text  # depth 1
    assert re.search(r"INFO +chain ok +3 hops +[\d.]+ ms +run [0-9a-f]{12}", text), text
    assert len(lines) == 5 and max(map(len, lines)) < 100  # chain.start and agent.start are debug
    assert "started" not in text


def test_debug_level_shows_the_starts(console_dist):
    code, _, screen = on_terminal("run", str(console_dist), "--task", '{"op": "count", "text": "a"}', "--log-level", "debug")
    text = plain(screen)
    assert code == 0 and "chain started" in text and re.search(r"     leaf +DEBUG +started", text), text


def test_a_failing_helper_shows_its_file_line_and_source(console_dist):
    code, stdout, screen = on_terminal("run", str(console_dist), "--task", json.dumps({"op": "parse", "text": "a=1\nno equals sign"}))
    text = plain(screen)
    assert code == 1
    assert re.search(TIME + r"   parser +ERROR +ValueError: not enough values to unpack", text), text
    frame = text.index("agent-parser/main.py:24 in parse")
    assert text[frame:].splitlines()[1].strip() == 'key, value = line.split("=")  # a line without "=" fails here'
    assert "agent-parser/main.py:17 in run" in text and "agent/main.py:12 in run" in text
    assert "/0/" not in text and "wasm_agents_harness" not in text  # the sandbox's paths and frames stay out of sight
    assert re.search(r"ERROR +chain failed: ValueError in parser", text)
    # The result's traceback names the same files, in Python's own form.
    traceback = json.loads(stdout)["error"]["traceback"]
    assert 'File "agent-parser/main.py", line 24, in parse\n    key, value = line.split("=")' in traceback


def test_a_guest_logging_warning_is_a_warning(console_dist):
    code, _, screen = on_terminal("run", str(console_dist), "--task", '{"op": "count", "text": " "}')
    assert code == 0 and re.search(TIME + r"   parser +WARNING +blank input, nothing to parse", plain(screen)), plain(screen)


def test_a_limit_names_the_setting_that_raises_it(console_dist):
    code, stdout, screen = on_terminal("run", str(console_dist), "--task", '{"op": "spin"}')
    text = plain(screen)
    assert code == 1 and json.loads(stdout)["error"]["message"] == "wall-time limit of 0.5 s exceeded"  # as before
    assert re.search(r"     leaf +ERROR +timeout: wall-time limit of 0.5 s exceeded", text), text
    assert "hint: raise [limits] wall_time_s in agent-leaf/agent.toml" in text


def test_a_batch_shows_a_progress_bar_then_the_summary(console_dist, tmp_path):
    tasks = [{"op": "count", "text": "x " * i} for i in range(1, 7)] + [{"op": "parse", "text": "bad"}]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(task) + "\n" for task in tasks))
    code, stdout, screen = on_terminal("run", str(console_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "--log-level", "error")
    assert code == 1 and [json.loads(line)["index"] for line in stdout.splitlines()] == list(range(7))
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)  # everything the bar drew, frame after frame
    assert re.search(r"0/7 ━+ +0:00:\d\d", drawn) and re.search(r"7/7 ━+ 6 ok, 1 failed 0:00:\d\d", drawn), drawn
    text = plain(screen)  # what stays on the screen: the events printed above the bar, then the summary, no bar
    assert "━" not in text and "/7" not in text, text
    assert re.search(r"(?m)^" + TIME + r"   parser +ERROR +ValueError: not enough values to unpack", text), text
    assert re.search(r"\n7 tasks: 6 ok, 1 failed in [\d.]+ s \(chain p50 \d+ ms, p95 \d+ ms\)\n*$", text), text


def test_json_when_stderr_is_not_a_terminal(console_dist, tmp_path):
    args = ["run", str(console_dist), "--task", '{"op": "count", "text": "a b"}']
    piped = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    events = [json.loads(line) for line in piped.stderr.splitlines()]  # every line is JSON, as before
    assert piped.returncode == 0 and [e["event.name"] for e in events][-1] == "chain.end"
    assert set(events[0]) >= {"timestamp", "severity_text", "severity_number", "event.name", "trace_id"}
    # On a terminal, --events FILE keeps JSON in the file; --log-format json keeps it on the terminal.
    code, _, screen = on_terminal(*args, "--events", str(tmp_path / "events.jsonl"))
    assert code == 0 and "chain ok" not in plain(screen)
    assert [json.loads(line)["event.name"] for line in (tmp_path / "events.jsonl").read_text().splitlines()][-1] == "chain.end"
    code, _, screen = on_terminal(*args, "--log-format", "json")
    events = [json.loads(line) for line in plain(screen).splitlines() if line.startswith("{")]
    assert code == 0 and events[-1]["event.name"] == "chain.end" and "chain ok" not in plain(screen)
    text = subprocess.run([*CLI, *args, "--log-format", "text"], capture_output=True, text=True, timeout=300)
    assert re.search(TIME + r" +INFO +chain ok", text.stderr) and "\x1b[" not in text.stderr  # asked for: text, no colors


def places(tmp_path: Path) -> list[Place]:
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "main.py").write_text("import pkg\n\ndef run():\n    return pkg.go()\n")
    (code / "pkg" / "__init__.py").write_text("def go():\n    raise ValueError('no')\n")
    (tmp_path / "secret.py").write_text("a secret of the host\n")
    return [Place("/0", "agent-parser", code)]


def test_frames_are_named_by_the_project_and_missing_lines_read_from_the_dist(tmp_path):
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/2/wasm_agents_harness.py", line 76, in run\n'
        "    result = agent.run()\n"
        '  File "/0/main.py", line 4, in run\n'
        '  File "/0/pkg/__init__.py", line 2, in go\n'
        "    raise ValueError('no')\n"
        "    ^^^^^^^^^^^^^^^^^^^^^^\n"
        "ValueError: no\n"
    )
    assert readable_traceback(trace, places(tmp_path)) == (
        "Traceback (most recent call last):\n"
        '  File "/2/wasm_agents_harness.py", line 76, in run\n'
        "    result = agent.run()\n"
        '  File "agent-parser/main.py", line 4, in run\n'
        "    return pkg.go()\n"  # the guest had none: read from the dist
        '  File "agent-parser/pkg/__init__.py", line 2, in go\n'
        "    raise ValueError('no')\n"  # the guest's own, with its carets
        "    ^^^^^^^^^^^^^^^^^^^^^^\n"
        "ValueError: no\n"
    )


def test_exception_groups_and_chained_tracebacks_keep_their_shape(tmp_path):
    trace = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/0/main.py", line 4, in run\n'
        "  | ExceptionGroup: two (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | Traceback (most recent call last):\n"
        '    |   File "/0/main.py", line 3, in run\n'
        "    | ValueError: 1\n"
    )
    assert readable_traceback(trace, places(tmp_path)).splitlines() == [
        "  + Exception Group Traceback (most recent call last):",
        '  |   File "agent-parser/main.py", line 4, in run',
        "  |     return pkg.go()",
        "  | ExceptionGroup: two (2 sub-exceptions)",
        "  +-+---------------- 1 ----------------",
        "    | Traceback (most recent call last):",
        '    |   File "agent-parser/main.py", line 3, in run',
        "    |     def run():",
        "    | ValueError: 1",
    ]


@pytest.mark.parametrize("path", ["/0/../secret.py", "/0/./main.py", "/0//main.py", "/0/missing.py", "/0/main.py\0x"])
def test_a_guest_cannot_make_the_host_read_other_files(tmp_path, path):
    trace = f'  File "{path}", line 1, in run\nValueError: no'
    rewritten = readable_traceback(trace, places(tmp_path))
    assert "secret" not in rewritten.replace("secret.py", "") and len(rewritten.splitlines()) == 2


def test_lines_past_the_end_and_other_mounts_are_left_alone(tmp_path):
    trace = '  File "/0/main.py", line 99, in run\n  File "/python/json/__init__.py", line 3, in loads\nKeyError: 1'
    assert readable_traceback(trace, places(tmp_path)) == (
        '  File "agent-parser/main.py", line 99, in run\n  File "/python/json/__init__.py", line 3, in loads\nKeyError: 1'
    )


def test_a_traceback_reads_few_files(tmp_path):
    where = places(tmp_path)
    for index in range(MAX_SOURCE_FILES + 5):
        (where[0].root / f"m{index}.py").write_text(f"line_of_{index}\n")
    trace = "".join(f'  File "/0/m{index}.py", line 1, in f\n' for index in range(MAX_SOURCE_FILES + 5))
    shown_lines = [line for line in readable_traceback(trace, where).splitlines() if "line_of_" in line]
    assert len(shown_lines) == MAX_SOURCE_FILES


@pytest.mark.parametrize("kind, message, folder, hint", [
    ("timeout", "wall-time limit of 0.5 s exceeded", "agent-leaf", "raise [limits] wall_time_s in agent-leaf/agent.toml"),
    ("timeout", "wall-time limit of 0.5 s exceeded (blocked in a host call)", "agent", "raise [limits] wall_time_s in agent/agent.toml"),
    ("timeout", "the caller's wall time ran out before the agent had a turn to run (every guest slot was busy)", "agent-leaf", None),
    ("memory", "memory limit of 64 MiB reached (MemoryError)", "agent-x", "raise [limits] memory_mb in agent-x/agent.toml"),
    ("fuel", "fuel budget of 10 exhausted", "agent-x", "raise [limits] fuel in agent-x/agent.toml"),
    ("output", "output limit of 100000 bytes exceeded", "agent-x", "raise [limits] output_bytes in agent-x/agent.toml"),
    ("DepthExceeded", "...", "agent-x", "raise [chain] max_depth in wasm-agents.toml"),
    ("DepthExceeded", "...", None, "raise [chain] max_depth in wasm-agents.toml"),
    ("stack", "call stack exhausted (recursion too deep)", "agent-x", None),
    ("ValueError", "wall-time limit of 1 s exceeded", "agent-x", None),
])
def test_limit_hints_name_the_key(kind, message, folder, hint):
    assert limit_hint(kind, message, folder) == hint


def test_guest_text_cannot_drive_the_terminal():
    record = {
        "timestamp": "2026-01-02T03:04:05.678901Z", "severity_text": "INFO", "event.name": "agent.log", "agent": "x",
        "body": "\x1b[2J\x1b]0;owned\x07fake\n12:00:00.000 agent INFO done\r", "attributes": {"k": "\x9b31m"},
    }
    text = render(record, 1).plain
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text and "\r" not in text
    assert len(text.splitlines()) == 1 and "\\x1b[2J" in text
    assert shown("a\tb\nc") == "a\tb\\x0ac"


def test_http_events_read_as_the_request_and_its_answer():
    common = {"timestamp": "2026-01-02T03:04:05.678901Z", "agent": "fetcher", "method": "GET", "scheme": "https", "host": "api.example.com",
              "port": 443, "path": "/v1/items"}
    done = render({**common, "severity_text": "INFO", "event.name": "http.request", "status": 200, "duration_ms": 12.5,
                   "request_bytes": 0, "response_bytes": 321}, 0).plain
    assert "GET https://api.example.com:443/v1/items -> 200  12.5 ms  321 bytes" in done
    refused = render({**common, "severity_text": "WARNING", "event.name": "http.refused", "reason": "not-allowed",
                      "message": "api.example.com:443 is not in the network allow list of agent 'fetcher'"}, 0).plain
    assert refused.endswith("WARNING HTTP request refused: api.example.com:443 is not in the network allow list of agent 'fetcher'")


def test_events_forwarded_from_ray_workers_are_indented_by_their_parent_span():
    import io

    from rich.console import Console

    from wasm_agents.console import ConsoleEvents

    screen = io.StringIO()
    events = ConsoleEvents(Console(file=screen, width=200), "info")
    stamp = {"timestamp": "2026-01-02T03:04:05.678901Z", "trace_id": "t" * 32}
    for record in (
        {"severity_text": "INFO", "event.name": "agent.log", "agent": "agent", "span_id": "a", "body": "root"},
        {"severity_text": "INFO", "event.name": "agent.log", "agent": "parser", "span_id": "b", "parent_span_id": "a", "body": "one down"},
        {"severity_text": "DEBUG", "event.name": "agent.log", "agent": "parser", "span_id": "b", "parent_span_id": "a", "body": "hidden"},
        {"severity_text": "INFO", "event.name": "agent.end", "agent": "leaf", "span_id": "c", "parent_span_id": "b", "outcome": "ok", "duration_ms": 2.5},
    ):
        events.forward(json.dumps({**stamp, **record}), {"ray.worker_pid": 7})
    lines = screen.getvalue().splitlines()
    assert [line[13:].split()[0] for line in lines] == ["agent", "parser", "leaf"]
    assert [len(line[13:]) - len(line[13:].lstrip()) for line in lines] == [0, 2, 4]
    assert lines[2].endswith("done  2.5 ms  ray.worker_pid=7")
