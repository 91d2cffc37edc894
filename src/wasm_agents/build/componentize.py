"""Componentize: one WebAssembly component per agent, from its staged code, its deps and the guest harness."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from wasm_agents.artifacts import sha256_file
from wasm_agents.errors import BuildError
from wasm_agents.paths import cache_dir, write_atomically
from wasm_agents.sandbox import GUEST_DIR, HARNESS_MODULE, WIT_DIR, WORLD

# Changes whenever the way components are made changes, so the cache never serves an older recipe's output.
RECIPE = "wasm-agents component recipe 2: hermetic guest path"

# componentize-py's own entry point, run in a child process so a crash or a 400 MB peak stays there.
COMPONENTIZE_PY = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"


def componentize(agent_name: str, code_dir: Path, site_packages: Path, output: Path) -> bool:
    """Write the agent's component to `output`; return True when it came from the cache."""
    cached = cache_dir("components") / f"{inputs_key(code_dir, site_packages)}.wasm"
    if cached.is_file():
        shutil.copyfile(cached, output)
        return True
    with tempfile.TemporaryDirectory(prefix="wasm-agents-componentize-") as work:
        # componentize-py writes __pycache__ into the folders it reads: give it copies.
        work_path = Path(work)
        paths = [shutil.copytree(source, work_path / name) for name, source in
                 (("code", code_dir), ("deps", site_packages), ("guest", GUEST_DIR))]
        built = work_path / "component.wasm"
        command = [sys.executable, "-c", COMPONENTIZE_PY, "-q", "-d", str(WIT_DIR), "-w", WORLD, "componentize"]
        for path in paths:
            command += ["-p", str(path)]
        command += [HARNESS_MODULE, "-o", str(built)]
        process = subprocess.run(command, capture_output=True, text=True, cwd=work, env=_hermetic_env(work_path))
        if process.returncode != 0 or not built.is_file():
            raise BuildError(f"agent '{agent_name}': componentize-py failed: {_reason(process.stderr)}")
        write_atomically(cached, built.read_bytes())
    shutil.copyfile(cached, output)
    return False


def inputs_key(code_dir: Path, site_packages: Path) -> str:
    """Hash everything a component is made from, plus the tool versions."""
    digest = hashlib.sha256()
    digest.update(f"{RECIPE}; componentize-py {version('componentize-py')}\n".encode())
    for label, root in (("code", code_dir), ("deps", site_packages), ("guest", GUEST_DIR), ("wit", WIT_DIR)):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(f"{label}/{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


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


def _reason(stderr: str) -> str:
    """Pick the line that says why: the last line of a Python traceback, else the last non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.split(":", 1)[0].endswith(("Error", "Exception")) or line.startswith("Caused by"):
            return line
    return lines[-1] if lines else "no output"
