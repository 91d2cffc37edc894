"""Discovery and agent.toml: every bad layout is one clear line naming the culprit."""

import json
import os
from pathlib import Path

import pytest

from wasm_agents.builder.discover import discover
from wasm_agents.errors import ProjectError
from wasm_agents.project import Limits, Project

GOOD_MAIN = "def main(config):\n    return config\n"


def make(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def refused(project: Path) -> str:
    with pytest.raises(ProjectError) as error:
        discover(project)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_finds_root_and_helpers_in_alphabetical_chain_order(tmp_path):
    project = discover(make(tmp_path, {
        "agent/main.py": GOOD_MAIN, "agent-zeta/main.py": GOOD_MAIN, "agent-alpha/main.py": GOOD_MAIN, "notes/x.txt": "",
    }))
    assert project.policy.order == ("agent", "alpha", "zeta")
    assert project.agents["alpha"].folder == "agent-alpha"
    assert project.agents["agent"].limits == Limits()


def test_project_file_declares_order_and_policy(tmp_path):
    project = discover(make(tmp_path, {
        "agent/main.py": GOOD_MAIN, "agent-a/main.py": GOOD_MAIN, "agent-b/main.py": GOOD_MAIN,
        "wasm-agents.toml": "[chain]\norder = ['b']\nmax_depth = 3\n",
    }))
    assert project.policy.order == ("agent", "b", "a")
    assert project.policy.max_depth == 3


def test_agent_toml_is_read(tmp_path):
    project = discover(make(tmp_path, {
        "agent/main.py": GOOD_MAIN,
        "agent/data/x.txt": "x",
        "agent/agent.toml": (
            "[limits]\nmemory_mb = 64\nwall_time_s = 1.5\nfuel = 1000\noutput_bytes = 10\n"
            "[delegation]\nallow = []\n[files]\ndata = 'data'\nscratch = true\n[settings]\nk = 'v'\n"
        ),
    }))
    spec = project.agents["agent"]
    assert spec.limits == Limits(memory_mb=64, wall_time_s=1.5, fuel=1000, output_bytes=10)
    assert spec.may_delegate_to == () and spec.data_dir == "data" and spec.scratch and spec.settings == {"k": "v"}


def test_project_json_round_trip(tmp_path):
    project = discover(make(tmp_path, {
        "agent/main.py": GOOD_MAIN, "agent-x/main.py": GOOD_MAIN,
        "agent-x/agent.toml": "[limits]\nfuel = 5\n[delegation]\nallow = ['agent']\n",
    }))
    assert Project.from_json(project.to_json()) == project


@pytest.mark.parametrize("files, expected", [
    ({"agent-x/main.py": GOOD_MAIN}, "no 'agent/' folder"),
    ({"agent/main.py": GOOD_MAIN, "agent-x/other.py": ""}, "agent-x/: no main.py"),
    ({"agent/main.py": "def helper(config):\n    pass\n"}, "agent/main.py: defines no main(config)"),
    ({"agent/main.py": "def main():\n    pass\n"}, "agent/main.py:1: main() must accept the config argument"),
    ({"agent/main.py": "x = 1\ndef main(config)\n    pass\n"}, "agent/main.py:2: syntax error"),
    ({"agent/main.py": GOOD_MAIN, "agent-A/main.py": GOOD_MAIN, "agent-a/main.py": GOOD_MAIN}, "both map to agent name 'a'"),
    ({"agent/main.py": GOOD_MAIN, "agent-a_b/main.py": GOOD_MAIN, "agent-a-b/main.py": GOOD_MAIN}, "both map to agent name 'a-b'"),
    ({"agent/main.py": GOOD_MAIN, "agentx/main.py": GOOD_MAIN}, "agentx/: agent folders are named"),
    ({"agent/main.py": GOOD_MAIN, "agent-a.b/main.py": GOOD_MAIN}, "invalid agent name"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limits]\nmemory = 5\n"}, "agent/agent.toml: limits: unknown key 'memory'"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limit]\n"}, "agent/agent.toml: unknown key 'limit'"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limits]\nmemory_mb = 'big'\n"}, "limits.memory_mb: expected an integer from 1 to 4096, got 'big'"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limits]\nwall_time_s = -1\n"}, "limits.wall_time_s: expected a number of seconds more than 0 and at most 86400, got -1"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limits]\nfuel = true\n"}, "limits.fuel: expected an integer from 1 to 9223372036854775807, got True"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[delegation]\nallow = 'x'\n"}, "agent/agent.toml: delegation.allow: expected a list of agent names, got 'x'"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[delegation]\nallow = ['ghost']\n"}, "unknown agent 'ghost'"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[files]\ndata = '../etc'\n"}, "files.data must be a relative folder"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[files]\ndata = 'nope'\n"}, "does not exist"),
    ({"agent/main.py": GOOD_MAIN, "agent/agent.toml": "[limits\n"}, "agent/agent.toml:"),
    ({"agent/main.py": GOOD_MAIN, "wasm-agents.toml": "[chain]\norder = ['ghost']\n"}, "unknown agent 'ghost'"),
    ({"agent/main.py": GOOD_MAIN, "wasm-agents.toml": "[chains]\n"}, "wasm-agents.toml: unknown key 'chains'"),
])
def test_bad_layouts_are_refused_with_one_line(tmp_path, files, expected):
    assert expected in refused(make(tmp_path, files))


# [limits] and [chain] have one schema for the TOML files and the manifest: a bad value is named alike in both.
SHARED_TABLES = [
    ("limits", "memory_mb", 99999, "limits.memory_mb: expected an integer from 1 to 4096, got 99999"),
    ("limits", "wall_time_s", 0, "limits.wall_time_s: expected a number of seconds more than 0 and at most 86400, got 0"),
    ("limits", "fuel", "lots", "limits.fuel: expected an integer from 1 to 9223372036854775807, got 'lots'"),
    ("limits", "memory", 5, "limits: unknown key 'memory' (allowed: fuel, json_depth, json_items, memory_mb, output_bytes, payload_bytes, result_bytes, wall_time_s)"),
    ("chain", "max_depth", 0, "chain.max_depth: expected an integer from 1 to 1000, got 0"),
    ("chain", "order", "agent", "chain.order: expected a list of agent names, got 'agent'"),
    ("chain", "order", ["agent", "X"], "chain.order[1]: expected an agent name (lowercase letters, digits and single dashes), got 'X'"),
    ("chain", "hops", 1, "chain: unknown key 'hops' (allowed: max_depth, max_hops, order, wall_time_s)"),
]


@pytest.mark.parametrize("table, key, value, expected", SHARED_TABLES)
def test_toml_and_manifest_refuse_a_bad_table_alike(tmp_path, table, key, value, expected):
    project = make(tmp_path, {"agent/main.py": GOOD_MAIN, "agent-x/main.py": GOOD_MAIN})
    data = discover(project).to_json()
    (data["agents"]["x"] if table == "limits" else data)[table][key] = value
    with pytest.raises(ProjectError) as from_json:
        Project.from_json(data)
    assert str(from_json.value) == f"manifest.json: project.{'agents.x.' if table == 'limits' else ''}{expected}"
    toml = "agent-x/agent.toml" if table == "limits" else "wasm-agents.toml"
    (project / toml).write_text(f"[{table}]\n{key} = {json.dumps(value)}\n")
    assert refused(project) == f"{toml}: {expected}"


def test_missing_project_folder(tmp_path):
    assert "no such project folder" in refused(tmp_path / "missing")


def test_symlink_out_of_the_project_is_refused(tmp_path):
    project = make(tmp_path / "p", {"agent/main.py": GOOD_MAIN})
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", project / "agent" / "leak.txt")
    assert "agent/leak.txt: symlink points outside the project" in refused(project)


def test_symlink_inside_the_project_is_accepted(tmp_path):
    project = make(tmp_path, {"agent/main.py": GOOD_MAIN, "shared/util.py": "X = 1\n"})
    os.symlink(project / "shared" / "util.py", project / "agent" / "util.py")
    assert "agent" in discover(project).agents


@pytest.mark.parametrize(
    ("requirements", "toml", "runtime"),
    [
        ("numpy==1.24.0\n", "", "scientific"),
        ("requests\nPandas>=2 ; python_version > '3'\n", "", "scientific"),
        ("scikit_learn\n", "", "scientific"),
        ("numpyx\n# numpy\n", "", "default"),
        ("", 'runtime = "scientific"\n', "scientific"),
        ("numpy\n", 'runtime = "default"\n', "default"),
    ],
)
def test_the_runtime_is_chosen_by_agent_toml_or_else_by_the_requirements(tmp_path: Path, requirements: str, toml: str, runtime: str) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "main.py").write_text("def main(config):\n    return None\n")
    (agent / "requirements.txt").write_text(requirements)
    (agent / "agent.toml").write_text(toml)
    assert discover(tmp_path).agents["agent"].runtime == runtime


def test_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "main.py").write_text("def main(config):\n    return None\n")
    (agent / "agent.toml").write_text('runtime = "pyodide"\n')
    with pytest.raises(ProjectError, match=r"agent/agent.toml: runtime: expected 'default' or 'scientific', got 'pyodide'"):
        discover(tmp_path)
