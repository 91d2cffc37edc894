"""The hostile suite's project, with every agent on the scientific runtime: tests/security's fixtures and tests over it.

Opt-in with the scientific runtime (WASM_AGENTS_SCIENTIFIC=1, `make scientific`). The hostile helper's memory
limit is raised from 32 to 64 MiB: the runtime alone takes 40 MiB before any agent code runs. The few tests
whose expected values are the default runtime's own are skipped here, each with the reason, and
test_differences.py asserts what the scientific runtime does instead.
"""

import os
import re

import pytest

from conftest import copy_project
from security.conftest import HOSTILE, hostile_dist, hostile_events, hostile_runner  # noqa: F401 - the same fixtures, over this project
from security.test_escape import tcp_listener  # noqa: F401 - for test_differences.py
from wasm_agents.build import build

if os.environ.get("WASM_AGENTS_SCIENTIFIC") != "1":
    collect_ignore_glob = ["test_*.py"]

HELPER_MEMORY_MB = 64


@pytest.fixture(scope="session")
def hostile_project(tmp_path_factory: pytest.TempPathFactory):
    project = copy_project(HOSTILE, tmp_path_factory.mktemp("hostile-scientific") / "hostile")
    for toml in project.glob("agent*/agent.toml"):
        text = re.sub(r"(?m)^memory_mb = 32$", f"memory_mb = {HELPER_MEMORY_MB}", toml.read_text())
        toml.write_text(f'runtime = "scientific"\n{text}')
    build(project)
    return project


# Test id -> why its expected value is the default runtime's own; test_differences.py checks the scientific one.
DIFFERENCES = {
    "test_escape.py::test_tcp_and_http_to_a_local_listener_never_connect": "EAI_FAIL is 4 in this runtime's wasi-libc, and a raw socket fails with ENOTSUP (WASI preview 1 has no sockets)",
    "test_escape.py::test_dns_is_refused": "EAI_FAIL is 4 in this runtime's wasi-libc",
    "test_escape.py::test_udp_datagram_never_leaves": "a socket fails with ENOTSUP (WASI preview 1 has no sockets)",
    "test_escape.py::test_native_code_modules_are_absent[mmap]": "this runtime has mmap (wasi-libc's, within the guest's own memory), which pandas imports",
    "test_escape.py::test_sleeping_forever_times_out_and_the_host_lives_on": "a sleep never blocks past the deadline here (the host's poll_oneoff): nothing is abandoned",
    "test_escape.py::test_limit_breakers_end_with_their_own_error[memory-memory-memory limit of 32 MiB reached (MemoryError)]": f"the helper's limit is {HELPER_MEMORY_MB} MiB here",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = DIFFERENCES.get(item.nodeid.removeprefix("tests/scientific_security/"))
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"the scientific runtime differs: {reason}"))
