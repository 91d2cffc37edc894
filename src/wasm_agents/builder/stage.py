"""Staging: copy each agent's sources into a clean tree, the input of componentize and package."""

import shutil
import stat
from pathlib import Path

from wasm_agents.errors import BuildError
from wasm_agents.project import AgentSpec

SKIPPED = {"__pycache__", ".DS_Store"}


def stage(project_dir: Path, agent: AgentSpec, code_dir: Path) -> Path:
    """Copy the agent's folder to `code_dir/<folder>` and return that path."""
    source = project_dir / agent.folder
    target = code_dir / agent.folder
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if SKIPPED & set(relative.parts) or path.suffix == ".pyc":
            continue
        mode = path.stat().st_mode  # follows symlinks: discovery already refused those leaving the project
        if stat.S_ISDIR(mode):
            if path.is_symlink():
                raise BuildError(f"{agent.folder}/{relative}: symlinked folders are not supported; copy the folder")
            continue
        if not stat.S_ISREG(mode):
            raise BuildError(f"{agent.folder}/{relative}: not a regular file")
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / relative)
    return target
