"""Running componentize-py: in a child process, with nothing of the build machine's Python leaking into the guest."""

import os
import subprocess
import sys
from pathlib import Path

from wasm_agents.sandbox import WIT_DIR, WORLD

# componentize-py's own entry point, run in a child process so a crash or a 400 MB peak stays there.
COMPONENTIZE_PY = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"


def run_componentize_py(module: str, python_path: list[Path], output: Path, work: Path) -> subprocess.CompletedProcess[str]:
    """Componentize `module` for the agent world; the guest sees `python_path` as /0, /1, ... in this order."""
    command = [sys.executable, "-c", COMPONENTIZE_PY, "-q", "-d", str(WIT_DIR), "-w", WORLD, "componentize"]
    for path in python_path:
        command += ["-p", str(path)]
    command += [module, "-o", str(output)]
    return subprocess.run(command, capture_output=True, text=True, cwd=work, env=_hermetic_env(work))


def _hermetic_env(work: Path) -> dict[str, str]:
    """Only what componentize-py needs, and an empty VIRTUAL_ENV.

    componentize-py appends the site-packages of $VIRTUAL_ENV (or else of `pipenv --venv`, or else of
    `python3` on PATH) to the guest's path: without an empty one, packages of the build machine that
    an agent never declared would be baked into its component.
    """
    empty_venv = work / "empty-venv"
    (empty_venv / "lib" / "site-packages").mkdir(parents=True)
    keep = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL")
    return {**{key: os.environ[key] for key in keep if key in os.environ}, "VIRTUAL_ENV": str(empty_venv)}
