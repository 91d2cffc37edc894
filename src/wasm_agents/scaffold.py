"""`wasm-agents init` and `new`: a new project, or a new helper agent folder, that builds and runs as it is."""

import json
import shutil
from pathlib import Path

from wasm_agents.errors import ProjectError
from wasm_agents.project import check_name

MAIN_PY = '''"""The {name} agent."""

from wasm_agents_sdk import delegate, log


class {cls}:
    def __init__(self, config):
        self.task = config["task"]
        self.settings = config["settings"]

    def run(self):
        log("info", "received a task", task=self.task)
        # Hand work to another agent with delegate(task, to="name"), or to the next in the chain with delegate(task).
        return {{"agent": "{name}", "echo": self.task}}


def main(config):
    return {cls}(config)
'''

AGENT_TOML = '''# Settings of the {name} agent; every key is optional. Defaults are shown commented out.

[limits]
# memory_mb = 256          # linear memory of one invocation
# wall_time_s = 30         # wall-clock time of one invocation, including time spent in delegations
# fuel = 1_000_000_000     # deterministic instruction budget (off by default: it costs CPU)
# output_bytes = 1048576   # captured stdout + stderr

[delegation]
# allow = ["multiplier"]   # agents this one may delegate to (default: any agent of the project)

[files]
# data = "data"            # a folder of this agent, mounted read-only at /data
# scratch = true           # a private writable /scratch, fresh for every invocation

[settings]
# greeting = "hello"       # anything: passed to main(config) as config["settings"]
'''


ROOT_MAIN_PY = '''"""The root agent: every task starts here. It hands the counting to the counter agent."""

from wasm_agents_sdk import delegate, log


class Root:
    def __init__(self, config):
        self.task = config["task"]

    def run(self):
        text = self.task.get("text", "")
        log("info", "counting", characters=len(text))
        counts = delegate({"text": text}, to="counter")  # runs in the counter's own fresh sandbox
        return {"text": text, **counts}


def main(config):
    return Root(config)
'''

COUNTER_MAIN_PY = '''"""The counter agent: words and the longest word of a text."""

import re


class Counter:
    def __init__(self, config):
        self.text = config["task"]["text"]

    def run(self):
        words = re.findall(r"\\w+", self.text)
        return {"words": len(words), "longest": max(words, key=len, default="")}


def main(config):
    return Counter(config)
'''

TASKS = [{"id": 1, "text": "Agents that nobody has to trust"}, {"id": 2, "text": "each in its own WebAssembly sandbox"}]


def init(directory: Path) -> Path:
    """Create a project in `directory` (new or empty): a root agent, a helper and a tasks file; return it."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ProjectError(f"{directory}: exists and is not an empty folder; choose a new one")
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.parent / f".{directory.name}.tmp"
    temporary.mkdir()
    try:
        for folder, main_py, name in (("agent", ROOT_MAIN_PY, "root"), ("agent-counter", COUNTER_MAIN_PY, "counter")):
            (temporary / folder).mkdir()
            (temporary / folder / "main.py").write_text(main_py)
            (temporary / folder / "requirements.txt").write_text("")
            (temporary / folder / "agent.toml").write_text(AGENT_TOML.format(name=name))
        (temporary / "tasks.jsonl").write_text("".join(json.dumps(task) + "\n" for task in TASKS))
        if directory.exists():
            directory.rmdir()
        temporary.rename(directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return directory


def scaffold(name: str, project: Path) -> Path:
    """Create `agent-<name>/` in `project` and return its path."""
    check_name(name, f"agent name {name!r}")
    if name == "agent":
        raise ProjectError("'agent' is the root agent's name; choose another")
    if not project.is_dir():
        raise ProjectError(f"{project}: no such project folder")
    folder = project / f"agent-{name}"
    if folder.exists():
        raise ProjectError(f"{folder}: already exists")
    cls = "".join(part.capitalize() for part in name.split("-")) + "Agent"
    temporary = project / f".agent-{name}.tmp"
    temporary.mkdir()
    try:
        (temporary / "main.py").write_text(MAIN_PY.format(name=name, cls=cls))
        (temporary / "requirements.txt").write_text("")
        (temporary / "agent.toml").write_text(AGENT_TOML.format(name=name))
        temporary.rename(folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return folder
