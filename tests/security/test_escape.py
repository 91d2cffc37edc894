"""A hostile root agent tries to leave its sandbox: files, network, processes, native code, env, exits, time.

Every probe runs in a real component built from tests/security/projects/hostile. The guest catches what
its probe raised and reports the exception type it saw, so each test asserts exactly what happens inside
the sandbox, and that nothing of the host reached the result. Errno values are WASI's (wasi-libc):
44 ENOENT, 63 EPERM, 2 EACCES, 58 ENOTSUP.
"""

import os
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import healthy, probe

REPO = Path(__file__).resolve().parents[2]
ENOENT, EPERM, EACCES, ENOTSUP = 44, 63, 2, 58


def refused(outcome: dict, kind: str, errno: int | None = None) -> None:
    assert "value" not in outcome, f"the probe succeeded: {outcome}"
    assert outcome["error"] == kind, outcome
    if errno is not None:
        assert outcome["errno"] == errno, outcome


# ---------------------------------------------------------------- files


def host_paths(hostile_project: Path) -> list[Path]:
    return [
        Path("/etc/passwd"),
        Path("/proc/self/environ"),
        Path.home() / ".bashrc",
        REPO / "README.md",
        REPO / "src" / "wasm_agents" / "orchestrator.py",
        hostile_project / "agent" / "main.py",
        hostile_project / "dist" / "manifest.json",
    ]


def test_host_files_do_not_exist_for_the_guest(hostile_runner, hostile_project):
    for path in host_paths(hostile_project):
        outcome = probe(hostile_runner, "read", str(path))
        refused(outcome, "FileNotFoundError", ENOENT)
        if path.is_file() and os.access(path, os.R_OK):
            secret = path.read_bytes()[:64].decode("utf-8", "replace")
            assert secret not in str(outcome)


@pytest.mark.parametrize("path", ["/", ".", "/etc", "/proc", "/tmp", str(Path.home()), str(REPO)])
def test_host_folders_cannot_be_listed(hostile_runner, path):
    refused(probe(hostile_runner, "listdir", path), "FileNotFoundError", ENOENT)


def test_stat_and_cwd_reveal_nothing(hostile_runner):
    refused(probe(hostile_runner, "stat", "/etc/passwd"), "FileNotFoundError", ENOENT)
    assert probe(hostile_runner, "getcwd") == {"value": "/"}
    assert probe(hostile_runner, "argv") == {"value": []}


def test_declared_mounts_work(hostile_runner):
    assert probe(hostile_runner, "read", "/data/readme.txt") == {"value": "public data shipped with the agent\n"}
    # /scratch is private and fresh: one file, the one this invocation wrote.
    assert probe(hostile_runner, "scratch") == {"value": ["mine", ["note.txt"]]}
    assert probe(hostile_runner, "scratch") == {"value": ["mine", ["note.txt"]]}


@pytest.mark.parametrize("path", [
    "/data/../../etc/passwd",
    "/scratch/../../../etc/passwd",
    "/scratch/../data/readme.txt",  # even the sibling mount: `..` never leaves a preopen
])
def test_dotdot_out_of_a_mount_is_refused(hostile_runner, path):
    outcome = probe(hostile_runner, "read", path)
    refused(outcome, "PermissionError", EPERM)
    assert "root:" not in str(outcome)


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../../etc/passwd", "../data/readme.txt", "../../"])
def test_symlink_out_of_scratch_is_refused(hostile_runner, target):
    # An absolute target is refused when the link is made; a relative one when it is followed.
    outcome = probe(hostile_runner, "symlink-read", target)
    refused(outcome, "PermissionError", EPERM)
    assert "root:" not in str(outcome)


@pytest.mark.parametrize("op, path, kind, errno", [
    ("write", "/tmp/wasm-agents-pwned", "FileNotFoundError", ENOENT),
    ("write", "/wasm-agents-pwned", "FileNotFoundError", ENOENT),
    ("write", "/data/pwned", "PermissionError", EPERM),  # read-only mount
    ("write", "/data/readme.txt", "PermissionError", EPERM),
    ("write", "/scratch/../pwned", "PermissionError", EPERM),
    ("mkdir", "/scratch/../pwned", "PermissionError", EPERM),
])
def test_writes_outside_scratch_are_refused(hostile_runner, hostile_project, op, path, kind, errno):
    refused(probe(hostile_runner, op, path), kind, errno)
    assert not Path("/tmp/wasm-agents-pwned").exists() and not Path("/wasm-agents-pwned").exists()
    data = hostile_project / "agent" / "data"
    assert sorted(p.name for p in data.iterdir()) == ["readme.txt"]


# ---------------------------------------------------------------- environment


def test_host_environment_never_reaches_the_guest(hostile_runner, monkeypatch):
    monkeypatch.setenv("WASM_AGENTS_CANARY", "canary-7f3a")
    assert probe(hostile_runner, "environ") == {"value": {}}
    assert probe(hostile_runner, "getenv", "WASM_AGENTS_CANARY") == {"value": None}
    assert probe(hostile_runner, "getenv", "HOME") == {"value": None}


# ---------------------------------------------------------------- network


class _Recorder(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.accepted.append(self.client_address)


@pytest.fixture
def tcp_listener():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Recorder)
    server.accepted = []
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_tcp_and_http_to_a_local_listener_never_connect(hostile_runner, tcp_listener):
    port = tcp_listener.server_address[1]
    # The listener works for the host: prove it, then forget that connection.
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    deadline = time.monotonic() + 2
    while not tcp_listener.accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(tcp_listener.accepted) == 1
    tcp_listener.accepted.clear()

    # create_connection resolves even a literal address through getaddrinfo, which WASI refuses.
    tcp = probe(hostile_runner, "tcp", port)
    refused(tcp, "gaierror")
    assert tcp["errno"] == socket.EAI_FAIL and "Non-recoverable" in tcp["message"]
    http = probe(hostile_runner, "urllib", port)
    refused(http, "URLError")
    assert "Non-recoverable error" in http["message"]
    # A raw socket is refused outright.
    refused(probe(hostile_runner, "socket"), "PermissionError", EACCES)
    time.sleep(0.2)
    assert tcp_listener.accepted == []


def test_dns_is_refused(hostile_runner):
    outcome = probe(hostile_runner, "dns")
    refused(outcome, "gaierror")
    assert outcome["errno"] == socket.EAI_FAIL


def test_udp_datagram_never_leaves(hostile_runner):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.3)
    try:
        refused(probe(hostile_runner, "udp", receiver.getsockname()[1]), "PermissionError", EACCES)
        with pytest.raises(socket.timeout):
            receiver.recvfrom(100)
    finally:
        receiver.close()


# ---------------------------------------------------------------- processes and native code


@pytest.mark.parametrize("op, kind, words", [
    ("subprocess", "OSError", "wasi does not support processes"),
    ("system", "AttributeError", "has no attribute 'system'"),
    ("fork", "AttributeError", "has no attribute 'fork'"),
    ("execv", "AttributeError", "has no attribute 'execv'"),
    ("kill", "AttributeError", "has no attribute 'kill'"),
    ("thread", "RuntimeError", "can't start new thread"),
])
def test_no_processes_signals_or_threads(hostile_runner, op, kind, words):
    outcome = probe(hostile_runner, op)
    refused(outcome, kind)
    assert words in outcome["message"]


def test_subprocess_errno_is_enotsup(hostile_runner):
    assert probe(hostile_runner, "subprocess")["errno"] == ENOTSUP


@pytest.mark.parametrize("module", ["ctypes", "_ctypes", "mmap", "_cffi_backend"])
def test_native_code_modules_are_absent(hostile_runner, module):
    outcome = probe(hostile_runner, "import", module)
    refused(outcome, "ModuleNotFoundError")
    assert outcome["message"] == f"No module named '{module}'"


def test_ctypes_failed_at_build_time_too(hostile_runner):
    assert probe(hostile_runner, "imports").get("ctypes") == "ModuleNotFoundError"


def test_cffi_cannot_load_native_code(hostile_runner):
    outcome = probe(hostile_runner, "cffi-dlopen")
    refused(outcome, "ModuleNotFoundError")
    assert outcome["message"] == "No module named 'cffi'"


def test_packages_of_the_build_machine_are_not_baked_in(hostile_runner):
    # The agent declares no requirements: nothing outside its code, its locked deps, the guest harness and
    # the embedded stdlib may be importable, whatever the build machine's python3 has installed.
    assert probe(hostile_runner, "imports") == {"ctypes": "ModuleNotFoundError", "cffi": "ModuleNotFoundError"}


# ---------------------------------------------------------------- exits, destructors, time


def test_raising_in_del_is_ignored_and_reported_on_stderr(hostile_runner, hostile_events):
    mark = hostile_events.mark()
    assert probe(hostile_runner, "del-raise") == {"value": "survived"}
    stderr = "".join(e.get("text", "") for e in hostile_events.since(mark) if e.get("event.name") == "agent.stderr")
    assert "RuntimeError: raised in __del__" in stderr


def test_os_exit_ends_only_the_sandbox(hostile_runner):
    result = hostile_runner.run({"op": "os-exit"})
    assert not result.ok
    assert result.error == {"type": "Exit", "message": "the agent exited the sandbox (os._exit)", "agent": "agent"}
    assert healthy(hostile_runner)


def test_sys_exit_is_an_ordinary_error(hostile_runner):
    result = hostile_runner.run({"op": "sys-exit"})
    assert result.error["type"] == "SystemExit" and result.error["message"] == "0"
    assert healthy(hostile_runner)


def test_sleeping_forever_times_out_and_the_host_lives_on(hostile_runner, hostile_events):
    # The helper (wall_time_s = 0.5) sleeps in a WASI call that no epoch deadline interrupts: the watchdog ends it.
    mark = hostile_events.mark()
    start = time.monotonic()
    result = hostile_runner.run({"op": "helper", "inner": {"op": "sleep-forever"}})
    elapsed = time.monotonic() - start
    assert result.error == {
        "type": "timeout", "message": "wall-time limit of 0.5 s exceeded (blocked in a host call)", "agent": "helper",
    }
    abandoned = [event for event in hostile_events.since(mark) if event["event.name"] == "sandbox.abandoned"]
    assert [(event["agent"], event["severity_text"]) for event in abandoned] == [("helper", "WARNING")]
    assert abandoned[0]["lingering"] >= 1
    assert 0.5 <= elapsed < 5  # ended by the limit, with room for a machine that stalls now and then
    assert healthy(hostile_runner)
    # The known limit of the watchdog: the worker thread blocked in the WASI sleep lingers until the call returns.
    assert any(t.name == "wasm-agents-invocation" for t in threading.enumerate())


def test_guests_asleep_past_their_deadline_do_not_starve_other_chains(hostile_runner):
    # More sleepers than guests may run at once (2 per core): each must give its turn back when abandoned.
    sleepers = 2 * (os.cpu_count() or 1) + 2
    with ThreadPoolExecutor(sleepers) as pool:
        results = list(pool.map(hostile_runner.run, [{"op": "helper", "inner": {"op": "sleep-forever"}}] * sleepers))
    assert {result.error["type"] for result in results} == {"timeout"}
    result = hostile_runner.run({"op": "echo", "index": 3})
    assert result.ok and result.result == {"index": 3, "square": 9}, result.error


@pytest.mark.parametrize("op, kind, message", [
    ("loop", "timeout", "wall-time limit of 0.5 s exceeded"),
    ("memory", "memory", "memory limit of 32 MiB reached (MemoryError)"),
    ("flood", "output", "output limit of 100000 bytes exceeded"),
    ("raise", "RuntimeError", "helper failed on purpose"),
])
def test_limit_breakers_end_with_their_own_error(hostile_runner, op, kind, message):
    start = time.monotonic()
    result = hostile_runner.run({"op": "helper", "inner": {"op": op}})
    assert not result.ok
    assert (result.error["type"], result.error["message"], result.error["agent"]) == (kind, message, "helper")
    assert time.monotonic() - start < 5
    assert healthy(hostile_runner)


@pytest.mark.parametrize("name", ["timeout", "output", "Exit", "UnknownAgent", "HopBudgetExceeded"])
def test_guest_cannot_forge_a_host_error_type(hostile_runner, name):
    result = hostile_runner.run({"op": "forge", "arg": name})
    assert (result.error["type"], result.error["message"]) == (
        "ReservedErrorName", f"the agent raised an exception named like a host error ({name}): forged by the guest",
    )


def test_a_guest_memoryerror_is_reported_as_the_memory_limit(hostile_runner):
    # Residual: MemoryError is a real guest exception too, so a class of that name reads as the limit.
    result = hostile_runner.run({"op": "forge", "arg": "MemoryError"})
    assert result.error["type"] == "memory"
