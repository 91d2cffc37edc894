"""The `wasm-agents` command: a thin layer over build, artifacts and the orchestrator."""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wasm_agents.errors import EXIT_AGENT_FAILED, EXIT_BAD_INPUT, EXIT_OK, VerificationError, WasmAgentsError
from wasm_agents.events import LEVELS, Events

stderr = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="wasm-agents")
def cli() -> None:
    """Build and run chains of untrusted Python agents, each in its own WebAssembly sandbox."""


@cli.command()
@click.argument("project", type=click.Path(path_type=Path), default=".")
@click.option("--dist", type=click.Path(path_type=Path), help="Output folder (default: PROJECT/dist).")
@click.option("--allow-unsafe-sources", is_flag=True, help="Accept URLs, local paths, -e and index options in requirements.txt.")
@click.option("--offline", is_flag=True, help="Never reach the network: install only from requirements.lock and the wheel cache.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help="Progress as bars (text) or JSON lines on stderr.")
def build(project: Path, dist: Path | None, allow_unsafe_sources: bool, offline: bool, quiet: bool, log_format: str) -> None:
    """Discover the agents of PROJECT, vendor their deps, build their components and package dist/."""
    from wasm_agents.build import build as build_project

    if log_format == "json":
        events = Events(None if quiet else sys.stderr)
        result = build_project(
            project, dist, allow_unsafe_sources=allow_unsafe_sources, offline=offline,
            progress=lambda phase, agent, state: events.emit(f"build.{phase}", agent=agent, state=state),
        )
        events.emit("build.done", dist=str(result.dist), seconds=result.seconds, cached=list(result.cached_components))
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=stderr, disable=quiet, transient=False,
    ) as bars:
        tasks: dict[str, Any] = {}

        def progress(phase: str, agent: str, state: str) -> None:
            label = {"vendor": "Vendoring dependencies", "componentize": "Building components"}[phase]
            if phase not in tasks:
                tasks[phase] = bars.add_task(label, total=None)
            if state != "start":
                bars.advance(tasks[phase])
            bars.update(tasks[phase], description=f"{label} ({agent}{', cached' if state == 'cached' else ''})")

        result = build_project(project, dist, allow_unsafe_sources=allow_unsafe_sources, offline=offline, progress=progress)
        for task in tasks.values():
            bars.update(task, total=bars.tasks[task].completed)
    if not quiet:
        stderr.print(f"Built {len(result.manifest.project['agents'])} agents into {result.dist} in {result.seconds:.1f} s")


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
def verify(dist: Path) -> None:
    """Check every byte of DIST against its manifests; list each missing, extra or changed file."""
    from wasm_agents.artifacts import verify_dist

    manifest = verify_dist(dist)
    click.echo(f"OK: {dist}: {len(manifest.files) + 2} files verified")


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect(dist: Path, as_json: bool) -> None:
    """Show the agents, chain order, dependencies, sizes, hashes and tool versions of a verified DIST."""
    from wasm_agents.inspection import describe

    description = describe(dist)
    if as_json:
        click.echo(json.dumps(description, indent=2, sort_keys=True))
        return
    console = Console()
    agents = Table(title=f"Agents (chain: {' -> '.join(description['chain']['order'])})")
    for column in ("agent", "folder", "limits", "may delegate to", "dependencies", "component"):
        agents.add_column(column)
    for name, agent in description["agents"].items():
        limits = agent["limits"]
        agents.add_row(
            name,
            agent["folder"] + "/",
            f"{limits['memory_mb']} MiB, {limits['wall_time_s']:g} s" + (f", fuel {limits['fuel']}" if "fuel" in limits else ""),
            (", ".join(agent["may_delegate_to"]) or "none") if "may_delegate_to" in agent else "any",
            ", ".join(f"{d['name']} {d['version']}" for d in agent["dependencies"]) or "-",
            f"{agent['component']['size'] / 1e6:.1f} MB {agent['component']['sha256'][:12]}",
        )
    console.print(agents)
    files = Table(title="Files")
    for column in ("file", "size", "sha256"):
        files.add_column(column)
    for path, entry in description["files"].items():
        files.add_row(path, f"{entry['size']:,}", entry["sha256"])
    console.print(files)
    console.print("Tools: " + ", ".join(f"{k} {v}" for k, v in description["tools"].items()))


@cli.command()
@click.argument("name")
@click.argument("project", type=click.Path(path_type=Path), default=".")
def new(name: str, project: Path) -> None:
    """Scaffold agent-NAME/ in PROJECT with a working main.py, requirements.txt and a commented agent.toml."""
    from wasm_agents.scaffold import scaffold

    folder = scaffold(name, project)
    click.echo(f"Created {folder}/ (build with: wasm-agents build {project})")


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
@click.option("--task", "task_text", help="One task as JSON.")
@click.option("--task-file", type=click.Path(path_type=Path), help="Tasks as JSON lines, one per line.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 1024), default=1, show_default=True, help="Chains run at once.")
@click.option("--events", "events_path", type=click.Path(path_type=Path), help="Write events to FILE instead of stderr.")
@click.option("--log-level", type=click.Choice(list(LEVELS)), default="info", show_default=True)
def run(dist: Path, task_text: str | None, task_file: Path | None, concurrency: int, events_path: Path | None, log_level: str) -> None:
    """Verify DIST, then run each task through its agent chain; one JSON result per task on stdout."""
    from wasm_agents.orchestrator import Runner

    tasks = _read_tasks(task_text, task_file)
    with _events_stream(events_path) as stream:
        events = Events(stream, log_level)
        failed = False
        with Runner(dist, events) as runner, ThreadPoolExecutor(max_workers=concurrency) as pool:
            for index, (task, result) in enumerate(zip(tasks, pool.map(runner.run, tasks), strict=True)):
                line = {"index": index, **_task_id(task), **result.to_json()}
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
                failed |= not result.ok
    _exit(EXIT_AGENT_FAILED if failed else EXIT_OK)


def _read_tasks(task_text: str | None, task_file: Path | None) -> list[Any]:
    if (task_text is None) == (task_file is None):
        raise WasmAgentsError("give exactly one of --task JSON or --task-file FILE")
    if task_text is not None:
        try:
            return [json.loads(task_text)]
        except ValueError as error:
            raise WasmAgentsError(f"--task: not valid JSON: {error}") from None
    try:
        lines = task_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise WasmAgentsError(f"{task_file}: cannot read tasks: {error}") from None
    tasks = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                tasks.append(json.loads(line))
            except ValueError as error:
                raise WasmAgentsError(f"{task_file}:{number}: not valid JSON: {error}") from None
    if not tasks:
        raise WasmAgentsError(f"{task_file}: no tasks")
    return tasks


def _task_id(task: Any) -> dict[str, Any]:
    if isinstance(task, dict) and isinstance(task.get("id"), (str, int)):
        return {"id": task["id"]}
    return {}


class _events_stream:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.stream: TextIO | None = None

    def __enter__(self) -> TextIO:
        if self.path is None:
            return sys.stderr
        try:
            self.stream = self.path.open("a", encoding="utf-8")
        except OSError as error:
            raise WasmAgentsError(f"{self.path}: cannot write events: {error}") from None
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream:
            self.stream.close()


def _exit(code: int) -> NoReturn:
    """Leave without interpreter teardown: wasmtime's runtime threads can abort the process during it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> NoReturn:
    """Entry point of the console script."""
    try:
        code = cli.main(standalone_mode=False)
    except VerificationError as error:
        for problem in error.problems:
            stderr.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
        _exit(error.exit_code)
    except WasmAgentsError as error:
        stderr.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        _exit(error.exit_code)
    except click.exceptions.Exit as done:
        _exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        _exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        stderr.print("aborted")
        _exit(130)
    except KeyboardInterrupt:
        _exit(130)
    _exit(code if isinstance(code, int) else EXIT_OK)
