"""Shared fixtures: real builds of the example and the testbed, once per test session."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from wasm_agents.build import build

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "quickstart"
TESTBED = Path(__file__).resolve().parent / "projects" / "testbed"


def copy_project(source: Path, target: Path) -> Path:
    """Copy a project without any dist/ it may have."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return target


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/quickstart, built once (components come from the content-keyed cache after that)."""
    project = copy_project(EXAMPLE, tmp_path_factory.mktemp("example") / "quickstart")
    build(project)
    return project


@pytest.fixture(scope="session")
def example_dist(example_project: Path) -> Path:
    return example_project / "dist"


@pytest.fixture(scope="session")
def testbed_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/projects/testbed built once: a probe root agent, an echo agent with files, a fuel-limited agent."""
    project = copy_project(TESTBED, tmp_path_factory.mktemp("testbed") / "testbed")
    return build(project).dist


@pytest.fixture(scope="session")
def testbed_runner(testbed_dist: Path):
    from wasm_agents.orchestrator import Runner

    with Runner(testbed_dist) as runner:
        yield runner


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # wasmtime's runtime threads can abort the process during interpreter teardown, sometimes with
    # exit code 0: end the process here, with pytest's own status, once it has reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
