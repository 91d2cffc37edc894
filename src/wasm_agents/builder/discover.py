"""Discovery: find the agent folders of a project and read their configuration, without running them."""

import ast
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from packaging.utils import canonicalize_name

from wasm_agents.errors import ProjectError
from wasm_agents.project import (
    DEFAULT_RUNTIME,
    DEFAULT_SCRATCH_MB,
    ROOT_AGENT,
    SCIENTIFIC_PACKAGES,
    SCIENTIFIC_RUNTIME,
    AgentSpec,
    ChainPolicy,
    Limits,
    Names,
    Network,
    Project,
    Runtime,
    Schema,
    ScratchMb,
    build_project,
    check_name,
    convert,
)

PROJECT_FILE = "wasm-agents.toml"
AGENT_FILE = "agent.toml"


class _Delegation(Schema):
    """[delegation] of agent.toml: the agents this one may delegate to (any agent of the project if left out)."""

    allow: Names | None = None


class _Files(Schema):
    """[files] of agent.toml: a folder of the agent to mount read-only at /data, and whether to give it a writable /scratch."""

    data: Annotated[str, msgspec.Meta(description="a relative folder inside the agent folder")] | None = None
    scratch: bool = False
    scratch_mb: ScratchMb = DEFAULT_SCRATCH_MB


class _AgentToml(Schema):
    """agent.toml: an agent's runtime, limits, delegation rights, files, network and settings; all optional."""

    runtime: Runtime | None = None  # None: chosen by the requirements (see runtime_of)
    limits: Limits = Limits()
    delegation: _Delegation = _Delegation()
    files: _Files = _Files()
    network: Network | None = None
    settings: dict[str, Any] = {}


class _ProjectToml(Schema):
    """wasm-agents.toml: the policy of the project's chains; optional."""

    chain: ChainPolicy = ChainPolicy()


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
    shown = f"{folder.name}/{AGENT_FILE}"
    config = convert(_read_toml(folder / AGENT_FILE, shown), _AgentToml, shown)
    data_dir = None if config.files.data is None else _check_data_dir(folder, config.files.data, f"{shown}: files.data")
    return AgentSpec(
        name, folder.name, config.limits, config.delegation.allow, data_dir, config.files.scratch, config.settings,
        scratch_mb=config.files.scratch_mb, network=config.network, runtime=config.runtime or runtime_of(folder / "requirements.txt"),
    )


def runtime_of(requirements: Path) -> str:
    """The runtime an agent gets when its agent.toml names none: the scientific one if it requires one of its packages."""
    if not requirements.is_file():
        return DEFAULT_RUNTIME
    for line in requirements.read_text(encoding="utf-8", errors="replace").splitlines():
        # Only the name is wanted here: vendoring reads the file in full, and says what is wrong with a line.
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
        if name and canonicalize_name(name[1]) in SCIENTIFIC_PACKAGES:
            return SCIENTIFIC_RUNTIME
    return DEFAULT_RUNTIME


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


def _check_data_dir(folder: Path, value: str, where: str) -> str:
    if not value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ProjectError(f"{where} must be a relative folder inside the agent folder, got {value!r}")
    if not (folder / value).is_dir():
        raise ProjectError(f"{where}: folder {folder.name}/{value} does not exist")
    return Path(value).as_posix()


def _read_policy(root: Path, agents: dict[str, AgentSpec]) -> ChainPolicy:
    """Read the chain policy; its order is the root, the helpers wasm-agents.toml names, then the others sorted."""
    policy = convert(_read_toml(root / PROJECT_FILE, PROJECT_FILE), _ProjectToml, PROJECT_FILE).chain
    if len(set(policy.order)) != len(policy.order):
        raise ProjectError(f"{PROJECT_FILE}: chain.order: lists an agent twice")
    declared = [name for name in policy.order if name != ROOT_AGENT]
    for name in declared:
        if name not in agents:
            raise ProjectError(f"{PROJECT_FILE}: chain.order names unknown agent '{name}'")
    helpers = sorted(name for name in agents if name not in (ROOT_AGENT, *declared))
    return msgspec.structs.replace(policy, order=(ROOT_AGENT, *declared, *helpers))


def _read_toml(path: Path, shown: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ProjectError(f"{shown}: {error}") from None
