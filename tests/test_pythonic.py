"""Real-world Python in the sandbox: lazy stdlib imports, codecs, packages' submodules and data files, and clear
errors for what WASI cannot do. Every probe runs in a real component built from tests/projects/pythonic."""

import codecs
import hashlib
from pathlib import Path

import pytest

from wasm_agents.build import build
from wasm_agents.errors import BuildError
from wasm_agents.orchestrator import Runner

from conftest import copy_project

PYTHONIC = Path(__file__).resolve().parent / "projects" / "pythonic"
pytestmark = pytest.mark.slow

# Imported lazily by real code and libraries; each failed inside run() before the stdlib was mounted.
LAZY_STDLIB = [
    "logging", "pathlib", "email", "email.utils", "http.client", "urllib.request", "threading", "asyncio", "tempfile",
    "shutil", "argparse", "xml.etree.ElementTree", "html.parser", "zipfile", "gzip", "tarfile", "zoneinfo", "tomllib",
    "importlib.metadata", "difflib", "pprint", "calendar", "queue", "secrets", "configparser", "locale", "gettext",
    "encodings.punycode", "encodings.cp037", "sqlite3", "bz2", "lzma", "subprocess", "multiprocessing",
]  # fmt: skip
# What the guest's CPython cannot have (no native code, terminal, GUI or processes), and modules that exist only
# to be run, not imported.
NOT_IN_THE_SANDBOX = {
    "ctypes", "ssl", "mmap", "fcntl", "termios", "pwd", "grp", "resource", "readline", "curses", "tkinter", "turtle",
    "turtledemo", "idlelib", "dbm", "pty", "tty", "antigravity", "this", "msvcrt", "nt", "winreg", "winsound", "syslog",
}  # fmt: skip


@pytest.fixture(scope="session")
def pythonic(tmp_path_factory: pytest.TempPathFactory):
    project = copy_project(PYTHONIC, tmp_path_factory.mktemp("pythonic") / "pythonic")
    with Runner(build(project).dist) as runner:
        yield runner


def run(runner: Runner, task: dict):
    result = runner.run(task)
    assert result.ok, result.error
    return result.result


def test_stdlib_modules_import_lazily_inside_run(pythonic):
    outcomes = run(pythonic, {"op": "imports", "modules": LAZY_STDLIB})
    assert {name: outcome for name, outcome in outcomes.items() if outcome != "ok"} == {}


def test_the_whole_stdlib_is_importable_but_what_wasi_cannot_have(pythonic):
    outcome = run(pythonic, {"op": "stdlib"})
    assert outcome["tried"] > 180
    assert set(outcome["failed"]) <= NOT_IN_THE_SANDBOX, outcome["failed"]


def test_real_work_with_lazily_imported_modules(pythonic):
    outcome = run(pythonic, {"op": "work"})
    assert outcome == {
        "gzip": "hellohello",
        "zip": "zipped zipped",
        "sqlite-memory": 6,
        "sqlite-scratch": 42,
        "pbkdf2": hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1000).hex()[:16],
        "asyncio": [2, 4],
        "lock": True,
        "tempfile-in-scratch": True,
        "uid": 0,
        "paris-offset-h": 2.0,
        "punycode": codecs.encode("bücher", "punycode").decode(),
        "cp037": "hello".encode("cp037").hex(),
        "idna": "xn--bcher-kva.example",
        "tzdata-version": outcome["tzdata-version"],
        "tzdata-resource": "TZif",
    }
    assert outcome["tzdata-version"] >= "2024"


def test_what_wasi_cannot_do_fails_naming_the_sandbox(pythonic):
    outcome = run(pythonic, {"op": "unavailable"})
    assert outcome["subprocess"].startswith("OSError: [Errno 58] wasi does not support processes: subprocesses are not available in the wasm-agents sandbox")
    assert outcome["thread"] == "RuntimeError: can't start new thread: threads are not available in the wasm-agents sandbox"
    assert outcome["bz2"].startswith("OSError: [Errno 58] bz2 compression is not available in the wasm-agents sandbox")
    assert outcome["lzma"].startswith("LZMAError: lzma/xz compression is not available in the wasm-agents sandbox")
    assert outcome["fcntl"] == "ModuleNotFoundError: No module named 'fcntl': file locking (fcntl) is not available in the wasm-agents sandbox"
    # Native code stays absent for the agent's own code, as before (see tests/security).
    assert outcome["ctypes"] == "ModuleNotFoundError: No module named 'ctypes'"


def test_temporary_files_need_a_scratch_folder_and_say_so(pythonic):
    message = run(pythonic, {"op": "to", "target": "graphs", "inner": {"op": "tempfile"}})
    assert message == (
        "[Errno 44] no temporary directory: the wasm-agents sandbox gives an agent one only with `scratch = true` "
        "under [files] in its agent.toml (a private /scratch, fresh for every invocation)"
    )


def test_an_agents_own_modules_and_files_load_lazily(pythonic):
    assert run(pythonic, {"op": "sum-file"}) == 42


def test_networkx_shortest_path(pythonic):
    task = {"op": "to", "target": "graphs", "inner": {"edges": [["a", "b", 1], ["b", "c", 2], ["a", "c", 5]], "source": "a", "target": "c"}}
    assert run(pythonic, task) == {"length": 3, "path": ["a", "b", "c"]}


def test_sympy_solves_a_cubic(pythonic):
    task = {"op": "to", "target": "algebra", "inner": {"equation": "x**3 - 6*x**2 + 11*x - 6"}}
    assert run(pythonic, task) == ["1", "2", "3"]


def test_a_build_failure_shows_the_import_chain_and_a_hint(tmp_path: Path):
    agent = tmp_path / "project" / "agent"
    agent.mkdir(parents=True)
    (agent / "main.py").write_text("import helper\n\ndef main(config):\n    return None\n")
    (agent / "helper.py").write_text("import json\nimport mmap\n")
    with pytest.raises(BuildError) as failure:
        build(tmp_path / "project")
    assert str(failure.value).splitlines() == [
        "agent 'agent': importing agent/main.py failed at build time: ModuleNotFoundError: No module named 'mmap'",
        "  agent/main.py:1: import helper",
        "  agent/helper.py:2: import mmap",
        "  hint: 'mmap' is a part of CPython that its WASI build (the sandbox's interpreter) does not have: "
        "no code in the sandbox can import it",
    ]
    assert not (tmp_path / "project" / "dist").exists()


def test_modules_the_snapshot_lacks_ship_as_bytecode_compiled_by_the_guest(pythonic):
    import tarfile

    with tarfile.open(pythonic.dist.path / "code-artifact.tar.gz") as archive:
        names = set(archive.getnames())
        pyc = archive.extractfile("agent/__pycache__/helpers.cpython-314.pyc").read()
    assert "agent/__pycache__/main.cpython-314.pyc" not in names  # main is in the snapshot: no bytecode needed
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # unchecked hash (PEP 552): valid whatever the mtimes
