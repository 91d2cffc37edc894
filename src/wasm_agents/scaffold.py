"""`wasm-agents new`: a new helper agent folder that builds and runs as it is."""

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
