"""Outgoing HTTP: real agents, real libraries in the sandbox, real servers on 127.0.0.1; the host decides."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_project
from local_servers import Server, certificate_authority, wait_for
from wasm_agents import Events, Runner, build
from wasm_agents.errors import ProjectError
from wasm_agents.network.allow import AllowList, literal_address, special_address

PROJECT = Path(__file__).parent / "projects" / "network"
MAX_REQUESTS = 20
MAX_RESPONSE_BYTES = 1_000_000


class Servers:
    """The servers of the session: plain and TLS ones the agent may reach, one it may not, one with an untrusted certificate."""

    def __init__(self, folder: Path) -> None:
        self.ca, trusted = certificate_authority(folder, "trusted")
        _, untrusted = certificate_authority(folder, "untrusted")
        self.plain, self.secure, self.forbidden, self.untrusted = Server(), Server(trusted), Server(), Server(untrusted)

    def forget(self) -> None:
        for server in (self.plain, self.secure, self.forbidden, self.untrusted):
            server.seen.clear()


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    running = Servers(tmp_path_factory.mktemp("ca"))
    yield running
    for server in (running.plain, running.secure, running.forbidden, running.untrusted):
        server.close()


@pytest.fixture(scope="session")
def network_dist(servers, tmp_path_factory) -> Path:
    """tests/projects/network built once, its allow lists naming the session's servers."""
    project = copy_project(PROJECT, tmp_path_factory.mktemp("network") / "network")
    allowed = [f"127.0.0.1:{servers.plain.port}", f"127.0.0.1:{servers.secure.port}", f"127.0.0.1:{servers.untrusted.port}", f"localhost:{servers.plain.port}"]
    (project / "agent" / "agent.toml").write_text(
        f"[limits]\nwall_time_s = 5\n\n[network]\nallow = {json.dumps(allowed)}\n"
        f"max_requests = {MAX_REQUESTS}\nmax_response_bytes = {MAX_RESPONSE_BYTES}\n"
    )
    (project / "agent-legacy" / "agent.toml").write_text(f'[network]\nallow = ["127.0.0.1:{servers.plain.port}"]\n')
    return build(project).dist


class Recorded:
    """Events kept as records."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass

    def named(self, name: str) -> list[dict]:
        return [record for record in map(json.loads, self.lines) if record["event.name"] == name]


@pytest.fixture(scope="session")
def recorded() -> Recorded:
    return Recorded()


@pytest.fixture(scope="session")
def runner(network_dist, recorded):
    with Runner(network_dist, Events(recorded, "info")) as running:
        yield running


@pytest.fixture
def fetch(runner, servers, recorded, monkeypatch):
    """Run one task in the root agent, trusting the test CA as a host would through SSL_CERT_FILE; return the result."""
    monkeypatch.setenv("SSL_CERT_FILE", str(servers.ca))
    servers.forget()
    recorded.lines.clear()

    def run(task: dict):
        result = runner.run(task)
        assert result.ok, result.error
        return result.result

    return run


LIBRARIES = ["requests", "urllib", "http.client", "urllib3", "httpx"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_each_library_reaches_an_allowed_server_unchanged(fetch, servers, library, scheme):
    server = servers.plain if scheme == "http" else servers.secure
    answer = fetch({"lib": library, "url": f"{server.url}/echo?q=1", "method": "POST", "body": "hello", "headers": {"X-Agent": "yes"}})
    assert answer["status"] == 200, answer
    seen = json.loads(answer["text"])
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/echo?q=1", "hello")
    assert seen["headers"]["X-Agent"] == "yes"
    assert seen["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert len(server.seen) == 1 + (library == "http.client")  # http.client asks twice on one connection


def test_a_session_keeps_its_cookies_and_sends_json(fetch, servers):
    answer = fetch({"lib": "session", "url": servers.plain.url})
    assert answer["cookies"] == {"token": "abc"}
    assert answer["json"]["headers"]["Cookie"] == "token=abc"
    assert json.loads(answer["json"]["body"]) == {"n": 1}


def test_a_compressed_answer_is_decoded_by_the_library(fetch, servers):
    answer = fetch({"gzip": True, "url": f"{servers.plain.url}/gzip"})
    assert answer["text"] == "squeezed " * 100
    assert answer["encoding"] == "gzip"


def test_requests_2_28_0_as_the_original_design_pins_it_works_unchanged(fetch, servers):
    answer = fetch({"to": "legacy", "task": {"url": servers.plain.url, "forbidden": servers.forbidden.url}})
    assert answer["version"] == "2.28.0"
    assert answer["get"]["path"] == "/echo?q=legacy"
    assert json.loads(answer["post"]["body"]) == {"from": "legacy"}
    assert f"127.0.0.1:{servers.forbidden.port} is not in the network allow list of agent 'legacy'" in answer["refused"]
    assert servers.forbidden.seen == []


CAUGHT_AS = {
    "requests": "ConnectionError",  # requests.exceptions.ConnectionError
    "urllib": "URLError",
    "http.client": "ConnectionRefusedError",
    "urllib3": "MaxRetryError",
    "httpx": "ConnectError",
}


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_host_not_allowed_is_refused_with_the_rule_and_nothing_reaches_it(fetch, servers, recorded, library):
    answer = fetch({"lib": library, "url": f"{servers.forbidden.url}/secret?key=1"})
    assert CAUGHT_AS[library] in answer["caught_as"], answer
    assert f"127.0.0.1:{servers.forbidden.port} is not in the network allow list of agent 'agent'" in answer["message"]
    assert servers.forbidden.seen == []
    [refused] = recorded.named("http.refused")
    assert (refused["reason"], refused["path"], refused["agent"]) == ("not-allowed", "/secret", "agent")


def test_a_name_resolving_to_loopback_is_refused_without_an_ip_literal_entry(fetch, servers):
    answer = fetch({"lib": "requests", "url": f"http://localhost:{servers.plain.port}/echo"})
    assert "localhost resolves to 127.0.0.1, a loopback address: only an allow entry naming 127.0.0.1 itself reaches it" in answer["message"]
    assert servers.plain.seen == []


@pytest.mark.parametrize("library", ["requests", "httpx"])
def test_every_hop_of_a_redirect_is_checked_again(fetch, servers, library):
    to_forbidden = fetch({"lib": library, "url": f"{servers.plain.url}/redirect?to={servers.forbidden.url}/x"})
    assert "is not in the network allow list" in to_forbidden["message"]
    to_loopback_name = fetch({"lib": library, "url": f"{servers.plain.url}/redirect?to=http://localhost:{servers.plain.port}/echo"})
    assert "a loopback address" in to_loopback_name["message"]
    to_metadata = fetch({"lib": library, "url": f"{servers.plain.url}/redirect?to=http://169.254.169.254/latest/meta-data/"})
    assert "169.254.169.254:80 is not in the network allow list" in to_metadata["message"]
    assert servers.forbidden.seen == []
    assert [seen["path"] for seen in servers.plain.seen] == [f"/redirect?to={target}" for target in (
        f"{servers.forbidden.url}/x", f"http://localhost:{servers.plain.port}/echo", "http://169.254.169.254/latest/meta-data/")]
    allowed = fetch({"lib": library, "url": f"{servers.plain.url}/redirect?to={servers.plain.url}/echo"})
    assert (allowed["status"], allowed["history"]) == (200, [302])


def test_an_oversize_answer_is_refused(fetch, servers):
    answer = fetch({"lib": "requests", "url": f"{servers.plain.url}/big?n={MAX_RESPONSE_BYTES + 1}"})
    assert f"larger than {MAX_RESPONSE_BYTES} bytes ([network] max_response_bytes in agent/agent.toml)" in answer["message"]
    assert fetch({"lib": "requests", "url": f"{servers.plain.url}/big?n={MAX_RESPONSE_BYTES}"})["status"] == 200


def test_a_slow_server_gets_the_request_timeout(fetch, servers):
    answer = fetch({"lib": "requests", "url": f"{servers.plain.url}/slow", "timeout": 0.5})
    assert answer["error"] == "ReadTimeout"
    assert "did not answer in time (waiting for the answer; bounded by the request's own timeout)" in answer["message"]


def test_a_server_that_never_answers_cannot_hold_the_agent_past_its_deadline(runner, servers):
    result = runner.run({"lib": "urllib", "url": f"{servers.plain.url}/slow"})  # no timeout of its own; wall_time_s = 5
    if result.ok:  # the agent caught the timeout before its deadline struck
        assert "[limits] wall_time_s in agent/agent.toml" in result.result["message"]
    else:
        assert result.error["type"] == "timeout"
    assert result.duration_ms < 5000 + 3000  # the server would hold it 60 s


def test_an_agent_making_too_many_requests_is_refused_past_max_requests(fetch, servers):
    answers = fetch({"lib": "requests", "url": f"{servers.plain.url}/echo", "repeat": MAX_REQUESTS + 2})
    assert [answer.get("status") for answer in answers[:MAX_REQUESTS]] == [200] * MAX_REQUESTS
    for answer in answers[MAX_REQUESTS:]:
        assert f"more than {MAX_REQUESTS} requests in one invocation ([network] max_requests in agent/agent.toml)" in answer["message"]
    assert len(servers.plain.seen) == MAX_REQUESTS


@pytest.mark.parametrize("headers, refusal", [
    ([["X-A", "1\r\nX-Injected: 1"]], "header 'X-A' has a line break or NUL in its value (header injection)"),
    ([["X-A\r\nX-Injected", "1"]], "invalid header name"),
    ([["Host", "internal.example"]], "the Host header 'internal.example' differs from the URL's host"),
])
def test_a_forged_request_is_refused_before_anything_is_sent(fetch, servers, headers, refusal):
    answer = fetch({"lib": "raw", "url": f"{servers.plain.url}/echo", "raw_headers": headers})
    assert answer["error"] == "Err" and "BadRequest" in answer["message"] and refusal in answer["message"]
    assert servers.plain.seen == []


@pytest.mark.parametrize("url, refusal", [
    ("ftp://127.0.0.1/x", "only http and https URLs are supported"),
    ("http://user:pw@127.0.0.1:1/x", "credentials in the URL are not sent"),
    ("http://127.0.0.1:1/a b", "spaces, control or non-ASCII characters"),
])
def test_a_malformed_url_is_refused(fetch, url, refusal):
    answer = fetch({"lib": "raw", "url": url})
    assert refusal in answer["message"]


def test_tls_is_verified(fetch, servers):
    answer = fetch({"lib": "requests", "url": f"{servers.untrusted.url}/echo"})
    assert f"TLS with 127.0.0.1:{servers.untrusted.port} failed: certificate verify failed" in answer["message"]
    assert servers.untrusted.seen == []


def test_nothing_of_the_host_goes_into_requests(fetch, servers, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", servers.forbidden.url)
    monkeypatch.setenv("http_proxy", servers.forbidden.url)
    answer = fetch({"lib": "urllib", "url": f"{servers.plain.url}/echo"})
    sent = set(json.loads(answer["text"])["headers"])
    assert sent == {"Host", "Accept-Encoding", "User-Agent", "Connection"}
    assert servers.forbidden.seen == []


def test_each_request_is_an_event_without_its_query(fetch, servers, recorded):
    fetch({"lib": "httpx", "url": f"{servers.plain.url}/echo?api_key=secret", "method": "PUT", "body": "abc"})
    [event] = recorded.named("http.request")
    assert {key: event[key] for key in ("agent", "method", "scheme", "host", "port", "path", "status", "request_bytes")} == {
        "agent": "agent", "method": "PUT", "scheme": "http", "host": "127.0.0.1", "port": servers.plain.port, "path": "/echo",
        "status": 200, "request_bytes": 3,
    }
    assert event["response_bytes"] > 0 and event["duration_ms"] > 0 and event["span_id"] and event["trace_id"]
    assert "secret" not in "".join(recorded.lines)


def test_delegating_never_passes_network_permission_on(fetch, servers):
    answer = fetch({"to": "offline", "task": {"url": f"{servers.plain.url}/echo"}})
    assert answer["refused"] == (  # a name-resolution error, as an agent without [network] always got, saying how to get one
        "[Errno -4] Non-recoverable error: no name resolution in the wasm-agents sandbox: agent 'offline' has no network access: "
        f"add [network] allow = [\"127.0.0.1:{servers.plain.port}\"] to agent-offline/agent.toml"
    )
    assert servers.plain.seen == []


def test_the_same_requests_work_on_the_ray_backend(network_dist, servers, tmp_path):
    pytest.importorskip("ray")
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(json.dumps(task) for task in [
        {"lib": "requests", "url": f"{servers.plain.url}/echo"},
        {"lib": "requests", "url": f"{servers.forbidden.url}/echo"},
    ]) + "\n")
    servers.forget()
    done = subprocess.run(
        [sys.executable, "-m", "wasm_agents", "run", str(network_dist), "--task-file", str(tasks), "--backend", "ray", "--ray-workers", "1"],
        capture_output=True, text=True, timeout=600,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["result"].get("status") for line in lines] == [200, None], done.stderr[-2000:]
    assert "is not in the network allow list of agent 'agent'" in lines[1]["result"]["message"]
    assert wait_for(lambda: len(servers.plain.seen) == 1) and servers.forbidden.seen == []


# The rules themselves: no sandbox needed.

@pytest.mark.parametrize("scheme, host, port, allowed", [
    ("https", "api.example.com", 443, True),
    ("http", "api.example.com", 80, True),
    ("https", "api.example.com", 8443, False),
    ("https", "a.example.org", 443, True),
    ("https", "a.b.example.org", 443, True),
    ("https", "example.org", 443, False),
    ("https", "evilexample.org", 443, False),
    ("https", "example.org.evil.com", 443, False),
    ("https", "api.example.com.evil.com", 443, False),
    ("http", "127.0.0.1", 8080, True),
    ("http", "127.0.0.1", 8081, False),
    ("http", "::1", 8080, True),
    ("http", "plain.example", 81, True),
    ("https", "plain.example", 81, False),
])
def test_allow_entries_match_exactly_or_by_subdomain(scheme, host, port, allowed):
    rules = AllowList(("api.example.com", "*.example.org", "127.0.0.1:8080", "[::1]:8080", "http://plain.example:81"))
    assert (rules.rule_for(scheme, host, port) is not None) == allowed


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "a loopback address"), ("10.1.2.3", "a private address"), ("192.168.0.1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"), ("224.0.1.1", "a multicast address"), ("0.0.0.0", "an unspecified address"),
    ("::ffff:10.0.0.1", "a private address"), ("2002:7f00:1::", "a loopback address"), ("100.64.0.1", "a non-public address"),
    ("8.8.8.8", None), ("2606:4700::1111", None),
])
def test_addresses_off_the_public_internet_are_named(address, kind):
    assert special_address(literal_address(address)) == kind


@pytest.mark.parametrize("entry, problem", [
    ("*.org", "a wildcard entry needs a domain of at least two labels"),
    ("ftp://example.org", "expected host[:port]"),
    ("example.org:70000", "port 70000 is not between 1 and 65535"),
    ("exa mple.org", "not a valid host name or IP address"),
    ("*.127.0.0.1", "a wildcard entry needs a domain"),
])
def test_a_bad_allow_entry_is_a_one_line_build_error(tmp_path, entry, problem):
    from wasm_agents.builder.discover import discover

    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "main.py").write_text("def main(config):\n    return None\n")
    (tmp_path / "agent" / "agent.toml").write_text(f"[network]\nallow = [{json.dumps(entry)}]\n")
    with pytest.raises(ProjectError) as error:
        discover(tmp_path)
    assert str(error.value).startswith(f"agent/agent.toml: network: allow: {entry!r}: {problem}")


def test_the_allow_list_travels_in_the_verified_manifest(network_dist):
    manifest = json.loads((network_dist / "manifest.json").read_text())
    assert "network" not in manifest["project"]["agents"]["offline"]
    assert manifest["project"]["agents"]["legacy"]["network"]["allow"][0].startswith("127.0.0.1:")

