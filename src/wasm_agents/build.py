"""The build phase: agent folders → discover → vendor → stage → componentize → package → dist/."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wasm_agents.project import SCIENTIFIC_RUNTIME
from wasm_agents.sandbox import GUEST_PYTHON

if TYPE_CHECKING:
    from wasm_agents.builder.vendor import LockedWheel
    from wasm_agents.artifacts.model import Manifest

# progress(phase, agent, state): phase is "vendor", "componentize", "image" or "compile" (the scientific runtime, once per
# host); state "start", "done" or "cached".
Progress = Callable[[str, str, str], None]


@dataclass(frozen=True)
class BuildResult:
    """What a build produced and how long it took."""

    dist: Path
    manifest: Manifest
    wheels: dict[str, list[LockedWheel]]
    cached_components: tuple[str, ...]
    seconds: float


def build(
    project_dir: Path,
    dist: Path | None = None,
    *,
    allow_unsafe_sources: bool = False,
    offline: bool = False,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
    signing_key: Path | None = None,
    command: Sequence[str] | None = None,
) -> BuildResult:
    """Build every agent of `project_dir` into `dist` (default `project_dir/dist`), atomically.

    The dist is signed with the private key file `signing_key` if given; provenance.json records
    `command`, the command line that asked for this build, if given. `notice` gets a line for each
    requirement built from its sdist or taken at an older release (else they are logged as warnings).
    """
    # The steps are imported here: `import wasm_agents` imports this module, and must stay quick for `run`.
    from wasm_agents.builder.componentize import componentize
    from wasm_agents.builder.discover import discover
    from wasm_agents.builder.package import BuildInputs, package
    from wasm_agents.builder.scientific import memory_image, scientific_artifact
    from wasm_agents.builder.package import Scientific
    from wasm_agents.builder.runtime import runtime_artifact
    from wasm_agents.builder.stage import stage
    from wasm_agents.builder.vendor import DEFAULT_TARGET, scientific_target, vendor
    from wasm_agents.artifacts.signing import load_private_key

    start = time.monotonic()
    report = progress or (lambda phase, agent, state: None)
    # Before the slow steps: a key that cannot be used fails the build at once.
    private_key = load_private_key(signing_key) if signing_key else None
    project = discover(project_dir)
    dist = dist or project_dir / "dist"
    with tempfile.TemporaryDirectory(prefix="wasm-agents-build-") as work:
        work_dir = Path(work)
        code_dir, deps_dir, components_dir, images_dir = work_dir / "code", work_dir / "deps", work_dir / "components", work_dir / "images"
        components_dir.mkdir()
        scientific = [name for name, spec in project.agents.items() if spec.runtime == SCIENTIFIC_RUNTIME]
        wheels = {}
        for name, spec in project.agents.items():
            report("vendor", name, "start")
            site_packages = deps_dir / name
            site_packages.mkdir(parents=True)
            wheels[name] = vendor(
                name, project_dir / spec.folder, site_packages, allow_unsafe_sources=allow_unsafe_sources, offline=offline,
                notify=notice, target=scientific_target(offline=offline) if name in scientific else DEFAULT_TARGET,
            )
            report("vendor", name, "done")
        staged = {name: stage(project_dir, spec, code_dir) for name, spec in project.agents.items()}

        def one_component(name: str) -> bool:
            report("componentize", name, "start")
            fuel = project.agents[name].limits.fuel is not None
            cached = componentize(name, staged[name], deps_dir / name, components_dir / f"{name}.wasm", fuel=fuel)
            report("componentize", name, "cached" if cached else "done")
            return cached

        @contextmanager
        def compiling_runtime() -> Iterator[None]:
            report("compile", "scientific runtime", "start")
            yield
            report("compile", "scientific runtime", "done")

        def one_image(name: str) -> None:
            report("image", name, "start")
            memory_image(
                project.agents[name], staged[name], deps_dir / name, images_dir / f"{name}.img", offline=offline,
                compiling=compiling_runtime,
            )
            report("image", name, "done")

        components = [name for name in project.agents if name not in scientific]
        # componentize-py peaks at ~400 MB and one core per component: one at a time per core.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            runtime = pool.submit(runtime_artifact)  # made once per host and componentize-py version
            cached = dict(zip(components, pool.map(one_component, components), strict=True))
            if scientific:
                images_dir.mkdir()
                scientific_runtime = pool.submit(scientific_artifact, offline=offline)  # made once per host
                list(pool.map(one_image, scientific))
        manifest = package(
            code_dir,
            deps_dir,
            runtime.result(),
            {name: components_dir / f"{name}.wasm" for name in components},
            project,
            tool_versions(),
            dist,
            scientific=Scientific(scientific_runtime.result(), {name: images_dir / f"{name}.img" for name in scientific}) if scientific else None,
            inputs=BuildInputs(
                command=None if command is None else list(command),
                parameters={"offline": offline, "allow_unsafe_sources": allow_unsafe_sources},
                locks=wheels,
            ),
            signing_key=private_key,
        )
    return BuildResult(
        dist=dist,
        manifest=manifest,
        wheels=wheels,
        cached_components=tuple(name for name, hit in cached.items() if hit),
        seconds=round(time.monotonic() - start, 3),
    )


def tool_versions() -> dict[str, str]:
    """Return the versions recorded in manifest.json."""
    from importlib.metadata import version  # with the email package it loads, too slow for `run`, which imports this module

    return {
        "wasm-agents": version("wasm-agents"),
        "componentize-py": version("componentize-py"),
        "wasmtime": version("wasmtime"),
        "guest-python": GUEST_PYTHON,
        "build-python": ".".join(map(str, sys.version_info[:3])),
    }
