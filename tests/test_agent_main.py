"""An agent's `main` as the build checks it: errors name the agent's own main.py, never the harness.

(main(config) returning an object without run() is found at run: tests/test_caches.py runs such an agent.)
"""

import subprocess
import sys

import pytest

from wasm_agents.build import build
from wasm_agents.errors import BuildError

CLI = [sys.executable, "-m", "wasm_agents"]


@pytest.mark.slow
def test_a_main_that_is_not_callable_is_a_one_line_build_error(tmp_path):
    project = tmp_path / "p"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "main.py").write_text("main = 42  # the static check sees main bound; only importing it shows what it is\n")
    done = subprocess.run([*CLI, "build", str(project), "-q"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: agent 'agent': agent/main.py: main must be a function main(config), not an int"]


@pytest.mark.slow
def test_a_main_deleted_after_it_was_defined_is_named_too(tmp_path):
    project = tmp_path / "p"
    (project / "agent").mkdir(parents=True)
    (project / "agent" / "main.py").write_text("def main(config):\n    return None\n\ndel main\n")
    with pytest.raises(BuildError) as error:
        build(project)
    assert str(error.value) == "agent 'agent': agent/main.py: defines no main(config) function"
