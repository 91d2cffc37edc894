"""The timeline: event lines read into chains, `trace` and `run --trace` as a user runs them, the page in a real browser."""

import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from wasm_agents.errors import WasmAgentsError
from wasm_agents.events import EventBudget, Events
from wasm_agents.timeline import Recorder, page_data, read_lines, render

CLI = [sys.executable, "-m", "wasm_agents"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

FAILING_HELPER = {"op": "to", "target": "echo", "inner": {"op": "raise-as", "name": "Boom"}}
OFFLINE = "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.org/data', timeout=5)\nexcept OSError as error:\n    result = str(error)\n"
TASKS = [
    {"op": "log"},
    FAILING_HELPER,
    {"op": "to", "target": "fuel", "inner": {"op": "loop"}},
    {"op": "catch", "target": "echo", "inner": {"op": "multiply", "a": 6, "b": 7}},
    {"op": "exec", "code": OFFLINE},  # no [network]: the host refuses the request
]


def wasm_agents(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, **kwargs)


def event(name: str, at: str, **fields) -> str:
    """One event line as `wasm-agents run` writes it, at second `at` past 12:00."""
    level = fields.pop("level", "INFO")
    return json.dumps({"timestamp": f"2026-01-02T12:00:{at}Z", "severity_text": level, "event.name": name, **fields})


TRACE = "0123456789abcdef0123456789abcdef"
ROOT = {"trace_id": TRACE, "span_id": "aaaaaaaaaaaaaaaa", "agent": "agent"}
HELPER = {"trace_id": TRACE, "span_id": "bbbbbbbbbbbbbbbb", "parent_span_id": "aaaaaaaaaaaaaaaa", "agent": "parser"}
CHAIN = [
    event("chain.start", "00.000000", level="DEBUG", trace_id=TRACE),
    event("agent.start", "00.000100", level="DEBUG", depth=0, **ROOT),
    event("agent.log", "00.010000", level="WARNING", body="parsing", attributes={"rows": 3}, **ROOT),
    event("agent.start", "00.020000", level="DEBUG", depth=1, **HELPER),
    event("agent.stdout", "00.030000", text="to stdout", **HELPER),
    event("http.request", "00.045000", method="GET", scheme="https", host="api.example.org", port=443, path="/v1/items",
          status=200, request_bytes=0, response_bytes=512, duration_ms=10.0, **HELPER),
    event("http.refused", "00.046000", level="WARNING", method="GET", scheme="http", host="10.0.0.1", port=8080, path="/",
          reason="address", message="10.0.0.1 is a private address", **HELPER),
    event("agent.end", "00.050000", level="ERROR", duration_ms=29.0, outcome="error", **HELPER,
          **{"exception.type": "ValueError", "exception.message": "bad row 2", "exception.stacktrace": "Traceback ...\nValueError: bad row 2\n"}),
    event("agent.end", "00.060000", level="ERROR", duration_ms=59.9, outcome="error", **ROOT,
          **{"exception.type": "DelegationError", "exception.message": "bad row 2"}),
    event("chain.end", "00.060100", level="ERROR", trace_id=TRACE, duration_ms=60.1, outcome="error", hops=2,
          **{"error.type": "ValueError", "error.agent": "parser"}),
]


def test_events_become_a_chain_of_hops_with_their_logs_requests_and_errors():
    [chain] = page_data(read_lines(CHAIN, "events.jsonl"))["chains"]
    assert (chain["trace_id"], chain["outcome"], chain["duration_ms"], chain["root"]) == (TRACE, "error", 60.1, "agent")
    assert (chain["error_type"], chain["error_agent"], chain["error_message"]) == ("ValueError", "parser", "bad row 2")
    root, helper = chain["hops"]
    assert (root["agent"], root["depth"], root["outcome"], root["start_ms"], root["queued_ms"]) == ("agent", 0, "error", 0.1, 0.1)
    assert (helper["agent"], helper["depth"], helper["start_ms"], helper["end_ms"], helper["duration_ms"]) == ("parser", 1, 21.0, 50.0, 29.0)
    assert helper["error"] == {"type": "ValueError", "message": "bad row 2", "traceback": "Traceback ...\nValueError: bad row 2\n", "hint": ""}
    assert (root["passed_on"], helper["passed_on"]) == (True, False)  # the root only let the helper's failure through
    assert [(e["name"], e["text"], e.get("detail")) for e in root["entries"]] == [("agent.log", "parsing", "rows=3")]
    stdout, request, refused = helper["entries"]
    assert (stdout["at_ms"], stdout["text"]) == (30.0, "to stdout")
    assert request["text"] == "GET https://api.example.org/v1/items → 200 (0 B sent, 512 B received)" and request["duration_ms"] == 10.0
    assert refused["text"] == "GET http://10.0.0.1:8080/ refused (address): 10.0.0.1 is a private address"


def test_helpers_follow_their_caller_even_when_its_end_was_stamped_late():
    late = [line.replace(":00.060000Z", ":00.090000Z") if '"agent.end"' in line and "aaaa" in line else line for line in CHAIN]
    cyclic = [*late, event("agent.end", "00.07", duration_ms=1.0, outcome="ok", trace_id=TRACE, span_id="c", parent_span_id="c", agent="odd")]
    [chain] = page_data(read_lines(cyclic, "e"))["chains"]
    assert [(hop["agent"], hop["start_ms"]) for hop in chain["hops"]] == [("agent", 30.1), ("parser", 21.0), ("odd", 69.0)]


def test_a_limit_hit_is_marked_as_one():
    lines = [
        event("agent.end", "01.000000", level="ERROR", duration_ms=300.0, outcome="error", fuel_used=200, **HELPER,
              **{"exception.type": "fuel", "exception.message": "fuel budget of 200 exhausted", "exception.hint": "raise fuel in agent-parser/agent.toml"}),
        event("chain.end", "01.000100", level="ERROR", trace_id=TRACE, duration_ms=301.0, outcome="error", **{"error.type": "fuel", "error.agent": "parser"}),
    ]
    [chain] = page_data(read_lines(lines, "e"))["chains"]
    [hop] = chain["hops"]
    assert chain["limit"] == hop["limit"] == "fuel" and hop["fuel_used"] == 200 and hop["error"]["hint"] == "raise fuel in agent-parser/agent.toml"


def test_info_level_events_are_enough_for_a_waterfall():
    """Without the debug events (chain.start, agent.start), starts come from each end and its duration, depth from the parents."""
    info = [line for line in CHAIN if '"DEBUG"' not in line]
    [chain] = page_data(read_lines(info, "e"))["chains"]
    root, helper = chain["hops"]
    assert (root["start_ms"], root["queued_ms"], root["depth"]) == (0.1, None, 0)  # the chain began 60.1 ms before its end
    assert (helper["start_ms"], helper["depth"]) == (21.0, 1)


def test_forwarded_ray_lines_name_their_worker_and_worker_events_are_left_out():
    extra = {"ray.node_id": "2a4480595d95e2fc2316fb8606ae319c4e76dbe7ae7277e132fad2ce", "ray.worker_pid": 7637}
    lines = [event("ray.worker.ready", "00.000000", level="DEBUG", **extra)]
    lines += [json.dumps({**json.loads(line), **extra}) for line in CHAIN]
    timeline = read_lines(lines, "e")
    [chain] = page_data(timeline)["chains"]
    assert chain["worker"] == "Ray node 2a4480595d95, pid 7637" and len(chain["hops"]) == 2 and not timeline.skipped


def test_lines_that_are_not_events_are_skipped_and_counted():
    lines = [
        "2026-01-02 12:00:00,000 INFO worker.py:1 -- Started a local Ray instance.",  # other output on stderr
        json.dumps({"index": 0, "ok": True, "result": 5}),  # a result line: stdout and stderr in one file
        "",
        *CHAIN,
        "error: aborted",
        '{"timestamp": "2026-01-02T12:00:01Z", "severity_text": "INFO", "event.na',  # the last line, cut short by a kill
    ]
    timeline = read_lines(lines, "e")
    assert timeline.skipped == [1, 2, 14, 15] and len(timeline.chains) == 1


@pytest.mark.parametrize("line, words", [
    ('{"timestamp": "2026-01-02T12:00:00Z", "event.name": "chain.end", oops}', "events.jsonl:2: not a JSON event: Expecting"),
    (event("chain.end", "00.1", trace_id=TRACE, duration_ms="slow"), 'events.jsonl:2: duration_ms: expected a number, got "slow"'),
    (event("agent.end", "00.1", trace_id=TRACE, span_id=7), "events.jsonl:2: span_id: expected a string, got 7"),
    (event("agent.end", "00.1", trace_id=TRACE, span_id="a", duration_ms=1.5).replace("1.5", "1e400"), "events.jsonl:2: duration_ms: expected a number, got Infinity"),
    (json.dumps({"timestamp": "noon", "event.name": "agent.log", "trace_id": TRACE}), 'events.jsonl:2: timestamp: expected an ISO 8601 time, got "noon"'),
    (json.dumps({"timestamp": "2026-01-02T12:00:00", "event.name": "agent.log", "trace_id": TRACE}), "events.jsonl:2: timestamp: expected a time zone"),
])
def test_a_malformed_event_is_refused_with_its_file_and_line(line, words):
    with pytest.raises(WasmAgentsError, match=re.escape(words)):
        read_lines([CHAIN[0], line, CHAIN[1]], "events.jsonl")


def test_unfinished_chains_and_hops_are_shown_as_unfinished():
    [chain] = page_data(read_lines(CHAIN[:5], "e"))["chains"]  # stopped while the helper ran
    assert chain["outcome"] == "unfinished" and [hop["outcome"] for hop in chain["hops"]] == ["unfinished", "unfinished"]


def test_agent_text_cannot_leave_the_data_element_and_only_the_pages_own_script_may_run():
    hostile = "</script><script>alert(1)</script><!-- <b>&amp;"
    lines = [*CHAIN[:2], event("agent.log", "00.01", body=hostile, attributes={"<x>": "</SCRIPT>"}, **ROOT), *CHAIN[2:]]
    html = render(read_lines(lines, "</title>events.jsonl"))
    data = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', html, re.DOTALL).group(1)
    assert "<" not in data and ">" not in data and "&" not in data
    assert json.loads(data)["chains"][0]["hops"][0]["entries"][0]["text"] == hostile
    markup = html.replace(data, "")
    assert markup.count("<script") == 2 and not re.search(r"https?://|src=|href=|@import|url\(", markup)  # nothing is fetched at view time
    import base64
    import hashlib

    policy = re.search(r"script-src '(sha256-[^']+)'", html).group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    assert policy == "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def test_a_recording_keeps_debug_events_and_leaves_the_runs_events_and_budgets_as_they_were():
    shown = io.StringIO()
    recorder = Recorder(Events(shown, "warning"))
    assert recorder.level == "debug"  # what Ray workers are started with
    budget = EventBudget(1000)
    recorder.emit("chain.start", "debug", trace_id=TRACE)
    for _ in range(3):  # ~500 bytes each: not shown, so only the recording's own budget of 1000 bytes pays, for the first
        recorder.emit("agent.log", "info", budget=budget, body="x" * 400, **ROOT)
    recorder.emit("agent.log", "warning", budget=budget, body="careful", **ROOT)
    recorder.forward(event("agent.end", "00.1", duration_ms=1.0, outcome="ok", **ROOT), {"ray.worker_pid": 1})
    recorder.forward(event("agent.log", "00.1", level="DEBUG", body="quiet", **ROOT), {"ray.worker_pid": 1})
    [line] = shown.getvalue().splitlines()
    assert json.loads(line)["body"] == "careful"
    assert (budget.used, budget.dropped) == (len(line) + 1, 0)  # charged as without a recording
    [chain] = recorder.timeline("this run").chains
    [hop] = chain.hops.values()
    assert [entry.text for entry in hop.entries] == ["x" * 400, "quiet"] and hop.outcome == "ok"


def test_trace_command_refuses_bad_input_with_one_line_and_exit_2(tmp_path):
    good = tmp_path / "events.jsonl"
    good.write_text("\n".join(CHAIN) + "\n")
    (tmp_path / "bad.jsonl").write_text(CHAIN[0] + "\n" + CHAIN[1].replace('"depth": 0', '"depth": "top"') + "\n")
    (tmp_path / "empty.jsonl").write_text("not an event\n")
    cases = [
        (["trace", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "x.html")], "none.jsonl: cannot read events: No such file or directory"),
        (["trace", str(good), "-o", str(tmp_path / "no" / "x.html")], f"cannot write the timeline: no such folder {tmp_path / 'no'}"),
        (["trace", str(good), "-o", str(tmp_path)], "is a folder; give the path of the HTML file to write"),
        (["trace", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "x.html")], 'bad.jsonl:2: depth: expected an integer, got "top"'),
        (["trace", str(tmp_path / "empty.jsonl"), "-o", str(tmp_path / "x.html")], "empty.jsonl: no chain events in it"),
    ]
    for args, words in cases:
        done = wasm_agents(*args)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and len(errors) == 1 and words in errors[0], (args, done.stderr)
    assert not (tmp_path / "x.html").exists()
    done = wasm_agents("trace", "-", "-o", str(tmp_path / "x.html"), input="junk\n" + good.read_text())
    assert done.returncode == 0 and done.stdout == f"Wrote {tmp_path / 'x.html'}: 1 chain (0 ok, 1 failed), 2 hops\n"
    assert done.stderr == "note: -: skipped 1 line that is not an event (the first: line 1)\n"
    assert wasm_agents("trace", "--help").returncode == 0


def page_of(html: str) -> dict:
    """The data a page embeds."""
    return json.loads(re.search(r'id="timeline-data">(.*?)</script>', html, re.DOTALL).group(1))


def run_batch(dist: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(task) + "\n" for task in TASKS))
    return wasm_agents("run", str(dist), "--task-file", str(tmp_path / "tasks.jsonl"), "-j", "2", *args)


@pytest.mark.slow
def test_trace_of_a_real_run_where_a_helper_fails(testbed_dist, tmp_path):
    done = run_batch(testbed_dist, tmp_path, "--events", str(tmp_path / "events.jsonl"), "--log-level", "debug")
    assert done.returncode == 1, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    traced = wasm_agents("trace", str(tmp_path / "events.jsonl"), "-o", str(tmp_path / "run.html"))
    assert traced.returncode == 0 and traced.stdout.strip() == f"Wrote {tmp_path / 'run.html'}: 5 chains (3 ok, 2 failed), 8 hops"
    chains = {chain["trace_id"]: chain for chain in page_of((tmp_path / "run.html").read_text())["chains"]}
    assert set(chains) == {result["run_id"] for result in results}
    for result in results:  # the same hops as the results say, agent by agent
        chain = chains[result["run_id"]]
        assert sorted((hop["agent"], hop["depth"], hop["outcome"]) for hop in chain["hops"]) == sorted(
            (hop["agent"], hop["depth"], hop["outcome"]) for hop in result["hops"]
        )
        assert chain["outcome"] == ("ok" if result["ok"] else "error")
    failed = chains[results[1]["run_id"]]
    root, echo = failed["hops"]
    assert (root["agent"], echo["agent"], echo["depth"]) == ("agent", "echo", 1)
    assert echo["error"]["type"] == "Boom" and echo["error"]["message"] == "raised by echo" and "Traceback" in echo["error"]["traceback"]
    assert 0 <= root["start_ms"] <= echo["start_ms"] <= echo["end_ms"] <= root["end_ms"] <= failed["duration_ms"] + 1
    assert failed["error_message"] == "raised by echo" and (root["passed_on"], echo["passed_on"]) == (True, False)
    [fuel] = [hop for hop in chains[results[2]["run_id"]]["hops"] if hop["agent"] == "fuel"]
    assert fuel["limit"] == "fuel" and fuel["error"]["hint"] == "raise [limits] fuel in agent-fuel/agent.toml", (fuel, results[2])
    logged = chains[results[0]["run_id"]]["hops"][0]["entries"]
    assert [(e["name"], e["text"]) for e in logged] == [("agent.log", "probe says"), ("agent.stdout", "to stdout"), ("agent.stderr", "to stderr")]
    [refused] = chains[results[4]["run_id"]]["hops"][0]["entries"]
    assert refused["name"] == "http.refused" and refused["text"].startswith("GET http://example.org/data refused (")


@pytest.mark.slow
def test_run_trace_records_debug_events_without_changing_what_stderr_gets(testbed_dist, tmp_path):
    plain = run_batch(testbed_dist, tmp_path, "--log-level", "error")
    traced = run_batch(testbed_dist, tmp_path, "--log-level", "error", "--trace", str(tmp_path / "run.html"))
    assert traced.returncode == plain.returncode == 1  # the page is written when the run fails too
    names = [json.loads(line)["event.name"] for line in traced.stderr.splitlines()]
    assert sorted(names) == sorted(json.loads(line)["event.name"] for line in plain.stderr.splitlines())
    assert set(names) <= {"agent.end", "chain.end"}  # errors only, as asked
    page = page_of((tmp_path / "run.html").read_text())
    assert page["source"] == "this run" and len(page["chains"]) == 5
    hops = [hop for chain in page["chains"] for hop in chain["hops"]]
    assert len(hops) == 8 and all(hop["queued_ms"] is not None for hop in hops)  # agent.start: a debug event
    assert any(entry["text"] == "probe says" for hop in hops for entry in hop["entries"])  # a warning, below --log-level error
    refused = run_batch(testbed_dist, tmp_path, "--trace", str(tmp_path / "missing" / "run.html"))
    assert refused.returncode == 2 and refused.stdout == "" and "no such folder" in refused.stderr


@pytest.mark.slow
def test_run_trace_is_written_when_the_run_is_interrupted(testbed_dist, tmp_path):
    tasks = [{"op": "add", "a": 1, "b": 1}, {"op": "sleep", "seconds": 4}]
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(task) + "\n" for task in tasks))
    args = [*CLI, "run", str(testbed_dist), "--task-file", str(tmp_path / "tasks.jsonl"), "-j", "2", "--log-level", "error"]
    process = subprocess.Popen([*args, "--trace", str(tmp_path / "run.html")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = json.loads(process.stdout.readline())  # the fast task has finished; the sleeper is running
    assert first["result"] == 2
    interrupted = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    waited = time.monotonic() - interrupted
    assert process.returncode == 130
    chains = {chain["trace_id"]: chain for chain in page_of((tmp_path / "run.html").read_text())["chains"]}
    assert chains.pop(first["run_id"])["outcome"] == "ok"
    [sleeper] = chains.values()
    assert sleeper["outcome"] != "ok" and waited < 2  # Ctrl-C stops the run; it does not wait for the sleeper
    assert not list(tmp_path.glob(".run.html.*"))  # written atomically: no temporary file left


class _Dom(HTMLParser):
    """The rendered page's elements, and its visible text with the classes of the elements around it."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "col", "wbr"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.texts: list[tuple[str, list[dict]]] = []
        self.stack: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if not any(tag in ("script", "style") for tag, _ in self.stack):
            self.texts.append((data, [attrs for _, attrs in self.stack]))

    def having(self, tag: str, css_class: str) -> list[dict]:
        return [attrs for name, attrs in self.elements if name == tag and css_class in (attrs.get("class") or "").split()]

    def text_within(self, **wanted: str) -> str:
        """The text inside elements whose attributes include all of `wanted` (class: one of its classes)."""
        def has(attrs, key, value):
            return value in (attrs.get(key) or "").split() if key == "class" else attrs.get(key.replace("_", "-")) == value

        return "".join(
            text for text, around in self.texts if all(any(has(attrs, key, value) for attrs in around) for key, value in wanted.items())
        )


def chromium(url: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Load `url` in headless Chromium; return the DOM as rendered and the console messages."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install chromium (the timeline's browser tests need it)")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0 and "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def test_the_browser_check_sees_a_console_error(tmp_path):
    """The console check below is not vacuous: a page whose script is refused or throws is caught."""
    page = render(read_lines(CHAIN, "e")).replace("script-src 'sha256-", "script-src 'sha256-X")
    (tmp_path / "bad.html").write_text(page)
    dom, console = chromium((tmp_path / "bad.html").as_uri(), tmp_path)
    assert any("Content Security Policy" in line for line in console) and not _Dom(dom).having("details", "hop")


@pytest.mark.slow
def test_the_page_renders_in_chromium_with_its_hops_and_the_failed_hops_error(testbed_dist, tmp_path):
    done = run_batch(testbed_dist, tmp_path, "--log-level", "warning", "--trace", str(tmp_path / "run.html"))
    results = [json.loads(line) for line in done.stdout.splitlines()]
    failed = results[TASKS.index(FAILING_HELPER)]
    page = tmp_path / "run.html"

    dom, console = chromium(page.as_uri() + "#" + failed["run_id"], tmp_path)
    assert console == []
    rendered = _Dom(dom)
    assert len(rendered.having("tr", "chain")) == len(TASKS)  # the list of chains
    hops = rendered.having("details", "hop")
    assert [(hop["data-agent"], hop["data-depth"], hop["data-outcome"]) for hop in hops] == [("agent", "0", "error"), ("echo", "1", "error")]
    assert ["open" in hop for hop in hops] == [False, True]  # open where the failure started
    assert rendered.text_within(**{"class": "error-message", "data_agent": "echo"}) == "raised by echo"
    assert "main.Boom: raised by echo" in rendered.text_within(**{"class": "traceback", "data_agent": "echo"})
    assert "Boom in echo: raised by echo" in rendered.text_within(**{"class": "chain-error"})

    dom, console = chromium(page.as_uri(), tmp_path)  # no chain named: the slowest one is shown
    slowest = max(results, key=lambda result: result["duration_ms"])
    assert console == [] and len(_Dom(dom).having("details", "hop")) == len(slowest["hops"])
