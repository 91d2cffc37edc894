"""The caches as a user meets them: `wasm-agents cache`, and compiling for this host at build rather than at run.

Every test works in a cache root of its own ($XDG_CACHE_HOME), never in the user's.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from terminal import on_terminal
from wasm_agents.build import build
from wasm_agents.caches import UNKNOWN, caches, clean
from wasm_agents.paths import cache_dir

CLI = [sys.executable, "-m", "wasm_agents"]


def wasm_agents(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the command with `home` as $XDG_CACHE_HOME: its caches are in home/wasm-agents."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600, env={**os.environ, "XDG_CACHE_HOME": str(home)})


def put(path: Path, size: int = 10_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def shown(home: Path) -> dict[str, dict]:
    done = wasm_agents(home, "cache", "--json")
    assert done.returncode == 0, done.stderr
    return {cache["name"]: cache for cache in json.loads(done.stdout)["caches"]}


def test_cache_shows_every_cache_with_its_entries_and_size(tmp_path):
    root = tmp_path / "wasm-agents"
    put(root / "compiled" / "a.cwasm", 100_000)
    put(root / "compiled" / "b.cwasm", 100_000)
    put(root / "unpacked" / "k" / "agent" / "main.py")
    put(root / "from-an-older-version" / "x")
    (root / "empty").mkdir()
    found = shown(tmp_path)
    assert list(found)[:8] == ["compiled", "components", "bytecode", "wheels", "sdist-builds", "stdlib", "runtime", "unpacked"]
    assert found["compiled"]["entries"] == 2 and found["compiled"]["bytes"] >= 200_000
    assert found["compiled"]["path"] == str(root / "compiled")
    assert found["unpacked"]["entries"] == 1 and found["wheels"] == {**found["wheels"], "entries": 0, "bytes": 0}
    assert found["from-an-older-version"]["holds"] == UNKNOWN
    assert "empty" not in found  # mounted where an agent has no files: not a cache
    table = subprocess.run([*CLI, "cache"], capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "80"})
    assert table.returncode == 0 and "compiled" in table.stdout and "…" not in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_clean_removes_the_named_caches_then_all_and_says_what_it_freed(tmp_path):
    root = tmp_path / "wasm-agents"
    put(root / "compiled" / "a.cwasm", 100_000)
    put(root / "compiled" / "b.cwasm", 100_000)
    put(root / "wheels" / "f00d" / "six-1.17.0-py2.py3-none-any.whl")
    (root / "empty").mkdir()
    done = wasm_agents(tmp_path, "cache", "clean", "compiled")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("compiled: removed 2 entries, 2")
    assert done.stdout.splitlines()[-1].startswith("Freed 2")
    assert list((root / "compiled").iterdir()) == [] and (root / "wheels" / "f00d").is_dir()
    done = wasm_agents(tmp_path, "cache", "clean", "--json")
    assert json.loads(done.stdout)["freed"] >= 10_000
    assert sorted(p.name for p in root.iterdir() if any(p.iterdir())) == [] and (root / "empty").is_dir()
    unknown = wasm_agents(tmp_path, "cache", "clean", "compiled", "nope")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown cache 'nope': the caches are compiled, ")


def test_clean_never_follows_a_symlink_out_of_the_cache_root(tmp_path):
    root = tmp_path / "wasm-agents"
    outside = put(tmp_path / "outside" / "precious")
    put(root / "compiled" / "a.cwasm")
    (root / "compiled" / "link.cwasm").symlink_to(outside)
    (root / "components" / "folder-link").parent.mkdir(parents=True)
    (root / "components" / "folder-link").symlink_to(outside.parent, target_is_directory=True)
    assert [c.removed for c in clean(["compiled", "components"], root=root)] == [2, 1]
    assert outside.is_file() and list((root / "compiled").iterdir()) == []
    (root / "wheels").symlink_to(outside.parent, target_is_directory=True)
    put(root / "compiled" / "b.cwasm")
    refused = wasm_agents(tmp_path, "cache", "clean")
    assert refused.returncode == 2 and "a symlink" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert (root / "compiled" / "b.cwasm").is_file(), "a refused clean removes nothing, not even before the refused cache"
    assert outside.is_file() and shown(tmp_path)["wheels"]["bytes"] == 0


def test_clean_keeps_what_a_running_process_holds_and_what_another_is_writing(tmp_path):
    root = tmp_path / "wasm-agents"
    held = put(root / "unpacked" / "in-use" / "agent" / "main.py")
    put(root / "unpacked" / "unused" / "agent" / "main.py")
    put(root / "compiled" / ".a.cwasm.being-written")  # write_atomically's temporary file
    old = put(root / "compiled" / ".b.cwasm.left-by-a-killed-writer")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    put(root / "compiled" / ".removing-0123456789abcdef" / "x")  # left by an interrupted clean
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; f = open(sys.argv[1]); print('open', flush=True); time.sleep(60)", str(held)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "open\n"
        cleaned = {c.name: c for c in clean(root=root)}
    finally:
        holder.kill()
        holder.wait()
    assert (cleaned["unpacked"].removed, cleaned["unpacked"].in_use) == (1, 1) and held.is_file()
    assert sorted(p.name for p in (root / "unpacked").iterdir()) == ["in-use"]
    assert sorted(p.name for p in (root / "compiled").iterdir()) == [".a.cwasm.being-written"]


def test_clean_older_than_keeps_entries_used_since(tmp_path):
    root = tmp_path / "wasm-agents"
    put(root / "wheels" / "recent" / "a.whl")
    stale = root / "wheels" / "stale"
    put(stale / "b.whl")
    os.utime(stale, (time.time() - 40 * 86400,) * 2)
    assert clean(["wheels"], older_than_days=30, root=root)[0].removed == 1
    assert [p.name for p in (root / "wheels").iterdir()] == ["recent"]
    assert [c.entries for c in caches(root) if c.name == "wheels"] == [1]


# A one-agent project whose main(config) returns a dict: built, it runs, and fails saying why.
NO_RUN_MAIN = 'def main(config):\n    return {"task": config["task"]}\n'


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def no_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """That project built once with the user's caches (its component is cached by content there), and a cache home
    whose root holds hard links to what those caches built, but nothing compiled for this host."""
    project = tmp_path_factory.mktemp("no-run") / "project"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "main.py").write_text(NO_RUN_MAIN)
    build(project)
    home = tmp_path_factory.mktemp("cache-home")
    for name in ("components", "bytecode", "wheels", "stdlib", "runtime"):
        shutil.copytree(cache_dir(name), home / "wasm-agents" / name, copy_function=_link_or_copy)
    return project, home


@pytest.mark.slow
def test_build_compiles_for_this_host_a_component_it_takes_from_its_cache(no_run, tmp_path):
    project, home = no_run
    assert wasm_agents(home, "cache", "clean", "compiled").returncode == 0
    built = wasm_agents(home, "build", str(project), "--dist", str(tmp_path / "dist"), "-q")
    assert built.returncode == 0, built.stderr
    assert shown(home)["compiled"]["entries"] == 1
    done = wasm_agents(home, "run", str(tmp_path / "dist"), "--task", "1")
    assert done.returncode == 1
    assert "sandbox.compile" not in done.stderr  # build compiled it: nothing left for run to do
    error = json.loads(done.stdout)["error"]
    assert error == {"type": "TypeError", "message": "agent 'agent': main(config) returned a dict without a run() method (agent/main.py)", "agent": "agent"}


@pytest.mark.slow
def test_a_compile_at_run_shows_a_spinner_on_a_terminal_and_an_event(no_run, tmp_path):
    project, home = no_run
    cleaned = wasm_agents(home, "cache", "clean", "compiled")
    assert cleaned.returncode == 0 and cleaned.stdout.endswith("\n") and "Freed" in cleaned.stdout
    events = tmp_path / "events.jsonl"
    code, _, terminal = on_terminal(
        [*CLI, "run", str(project / "dist"), "--task", "1", "--events", str(events)], env={"XDG_CACHE_HOME": str(home)}, timeout=600,
    )
    assert code == 1
    assert "compiling agent 'agent' for this host (once; cached)..." in terminal
    compiled = [e for e in map(json.loads, events.read_text().splitlines()) if e["event.name"] == "sandbox.compile"]
    assert len(compiled) == 1 and compiled[0]["agent"] == "agent" and compiled[0]["severity_text"] == "INFO"
    assert compiled[0]["seconds"] > 0 and shown(home)["compiled"]["entries"] == 1
    again = wasm_agents(home, "run", str(project / "dist"), "--task", "1")
    assert "sandbox.compile" not in again.stderr
