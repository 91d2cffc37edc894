"""Discovery: find the agent folders of a project and read their configuration, without running them."""

import ast
import os
import tomllib
from pathlib import Path
from typing import Any

from wasm_agents.errors import ProjectError
from wasm_agents.project import (
    ROOT_AGENT,
    AgentSpec,
    Project,
    build_project,
    check_name,
    limits_from_table,
    policy_from_table,
)

PROJECT_FILE = "wasm-agents.toml"
AGENT_FILE = "agent.toml"
AGENT_KEYS = {"limits", "delegation", "files", "settings"}


def discover(project_dir: Path) -> Project:
    """Return the project described by the `agent*` folders under `project_dir`."""
    if not project_dir.is_dir():
        raise ProjectError(f"{project_dir}: no such project folder")
    root = project_dir.resolve()
    folders = sorted(p for p in root.iterdir() if p.name.startswith("agent") and p.is_dir())
    if not any(p.name == ROOT_AGENT for p in folders):
        raise ProjectError(f"{project_dir}: no '{ROOT_AGENT}/' folder (the root agent)")
    agents: dict[str, AgentSpec] = {}
    for folder in folders:
        spec = read_agent(root, folder)
        if spec.name in agents:
            raise ProjectError(
                f"{folder.name}/ and {agents[spec.name].folder}/ both map to agent name '{spec.name}'"
            )
        agents[spec.name] = spec
    policy = _read_policy(root, agents)
    return build_project(agents, policy, f"{project_dir}")


def agent_name(folder_name: str) -> str:
    """Return the agent name of a folder: `agent` for the root, `<name>` for `agent-<name>`."""
    if folder_name == ROOT_AGENT:
        return ROOT_AGENT
    if not folder_name.startswith("agent-"):
        raise ProjectError(f"{folder_name}/: agent folders are named 'agent/' or 'agent-<name>/'")
    return check_name(folder_name.removeprefix("agent-").lower().replace("_", "-"), f"{folder_name}/")


def read_agent(root: Path, folder: Path) -> AgentSpec:
    """Check one agent folder and return its spec."""
    name = agent_name(folder.name)
    check_inside(root, folder)
    main_py = folder / "main.py"
    if not main_py.is_file():
        raise ProjectError(f"{folder.name}/: no main.py")
    check_main(main_py, f"{folder.name}/main.py")
    config = _read_toml(folder / AGENT_FILE, f"{folder.name}/{AGENT_FILE}")
    return _agent_from_table(name, folder, config)


def check_inside(root: Path, folder: Path) -> None:
    """Refuse symlinks under `folder` (or `folder` itself) that resolve outside the project."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise ProjectError(f"{path.relative_to(root)}: symlink points outside the project ({os.readlink(path)})")


def check_main(main_py: Path, shown: str) -> None:
    """Check that `main_py` parses and defines `main` taking a config argument."""
    source = main_py.read_bytes()
    try:
        tree = ast.parse(source, filename=shown)
    except SyntaxError as error:
        raise ProjectError(f"{shown}:{error.lineno}: syntax error: {error.msg}") from None
    except ValueError as error:  # e.g. null bytes
        raise ProjectError(f"{shown}: cannot be parsed: {error}") from None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            args = node.args
            if not (args.posonlyargs or args.args or args.vararg):
                raise ProjectError(f"{shown}:{node.lineno}: main() must accept the config argument")
            return
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "main":
            raise ProjectError(f"{shown}:{node.lineno}: main must be a plain function, not async")
        if _binds_main(node):
            return
    raise ProjectError(f"{shown}: defines no main(config) function")


def _binds_main(node: ast.stmt) -> bool:
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "main" for t in node.targets)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((alias.asname or alias.name) == "main" for alias in node.names)
    return False


def _agent_from_table(name: str, folder: Path, table: dict[str, Any]) -> AgentSpec:
    where = f"{folder.name}/{AGENT_FILE}"
    unknown = sorted(set(table) - AGENT_KEYS)
    if unknown:
        raise ProjectError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(AGENT_KEYS))})")
    delegation = table.get("delegation", {})
    if not isinstance(delegation, dict) or set(delegation) - {"allow"}:
        raise ProjectError(f"{where}: [delegation] takes only 'allow', a list of agent names")
    allow = delegation.get("allow")
    if allow is not None and (not isinstance(allow, list) or not all(isinstance(a, str) for a in allow)):
        raise ProjectError(f"{where}: delegation.allow must be a list of agent names, got {allow!r}")
    files = table.get("files", {})
    if not isinstance(files, dict) or set(files) - {"data", "scratch"}:
        raise ProjectError(f"{where}: [files] takes only 'data' (a folder of this agent) and 'scratch' (true/false)")
    data_dir = files.get("data")
    if data_dir is not None:
        data_dir = _check_data_dir(folder, data_dir, f"{where}: files.data")
    scratch = files.get("scratch", False)
    if not isinstance(scratch, bool):
        raise ProjectError(f"{where}: files.scratch must be true or false, got {scratch!r}")
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise ProjectError(f"{where}: [settings] must be a table")
    return AgentSpec(
        name=name,
        folder=folder.name,
        limits=limits_from_table(table.get("limits", {}), f"{where}: limits"),
        may_delegate_to=None if allow is None else tuple(check_name(a, f"{where}: delegation.allow") for a in allow),
        data_dir=data_dir,
        scratch=scratch,
        settings=settings,
    )


def _check_data_dir(folder: Path, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ProjectError(f"{where} must be a relative folder inside the agent folder, got {value!r}")
    if not (folder / value).is_dir():
        raise ProjectError(f"{where}: folder {folder.name}/{value} does not exist")
    return Path(value).as_posix()


def _read_policy(root: Path, agents: dict[str, AgentSpec]):
    table = _read_toml(root / PROJECT_FILE, PROJECT_FILE)
    unknown = sorted(set(table) - {"chain"})
    if unknown:
        raise ProjectError(f"{PROJECT_FILE}: unknown key '{unknown[0]}' (allowed: chain)")
    helpers = sorted(name for name in agents if name != ROOT_AGENT)
    policy = policy_from_table(table.get("chain", {}), f"{PROJECT_FILE}: chain", require_order=False)
    declared = [name for name in policy.order if name != ROOT_AGENT]
    for name in declared:
        if name not in agents:
            raise ProjectError(f"{PROJECT_FILE}: chain.order names unknown agent '{name}'")
    order = (ROOT_AGENT, *declared, *(name for name in helpers if name not in declared))
    return policy_from_table({**table.get("chain", {}), "order": list(order)}, f"{PROJECT_FILE}: chain", require_order=True)


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ProjectError(f"{shown}: {error}") from None
