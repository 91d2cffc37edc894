"""What the scientific runtime does where the hostile suite expects the default runtime's own values (conftest.DIFFERENCES)."""

import socket
import threading
import time

from security.conftest import healthy, probe
from security.test_escape import refused

ENOTSUP = 58
EAI_FAIL = 4  # wasi-libc's, in this runtime


def test_tcp_and_http_to_a_local_listener_never_connect(hostile_runner, tcp_listener):
    tcp = probe(hostile_runner, "tcp", tcp_listener.server_address[1])
    refused(tcp, "gaierror")
    assert tcp["errno"] == EAI_FAIL and "Non-recoverable" in tcp["message"]
    http = probe(hostile_runner, "urllib", tcp_listener.server_address[1])
    refused(http, "URLError")
    assert "Non-recoverable error" in http["message"]
    refused(probe(hostile_runner, "socket"), "OSError", ENOTSUP)
    time.sleep(0.2)
    assert tcp_listener.accepted == []


def test_dns_is_refused(hostile_runner):
    outcome = probe(hostile_runner, "dns")
    refused(outcome, "gaierror")
    assert outcome["errno"] == EAI_FAIL


def test_udp_datagram_never_leaves(hostile_runner):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.3)
    try:
        refused(probe(hostile_runner, "udp", receiver.getsockname()[1]), "OSError", ENOTSUP)
        try:
            receiver.recvfrom(100)
            raise AssertionError("a datagram left the sandbox")
        except socket.timeout:
            pass
    finally:
        receiver.close()


def test_mmap_maps_only_guest_memory(hostile_runner):
    assert probe(hostile_runner, "import", "mmap") == {"value": "imported"}


def test_sleeping_forever_times_out_without_a_lingering_thread(hostile_runner, hostile_events):
    mark = hostile_events.mark()
    start = time.monotonic()
    result = hostile_runner.run({"op": "helper", "inner": {"op": "sleep-forever"}})
    assert result.error == {"type": "timeout", "message": "wall-time limit of 0.5 s exceeded", "agent": "helper"}
    assert not [event for event in hostile_events.since(mark) if event["event.name"] == "sandbox.abandoned"]
    assert 0.5 <= time.monotonic() - start < 5
    assert healthy(hostile_runner)
    lingering = [thread for thread in threading.enumerate() if thread.name == "wasm-agents-invocation" and not thread.is_alive()]
    assert lingering == []


def test_memory_breaker_ends_with_the_memory_limit(hostile_runner):
    result = hostile_runner.run({"op": "helper", "inner": {"op": "memory"}})
    assert (result.error["type"], result.error["message"], result.error["agent"]) == ("memory", "memory limit of 64 MiB reached (MemoryError)", "helper")
    assert healthy(hostile_runner)
