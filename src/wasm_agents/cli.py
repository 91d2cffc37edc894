"""The `wasm-agents` command: a thin layer over build, artifacts and the orchestrator."""

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from wasm_agents.backends import BACKENDS
from wasm_agents.errors import (
    EXIT_AGENT_FAILED,
    EXIT_BAD_INPUT,
    EXIT_OK,
    ErrorKind,
    Failure,
    VerificationError,
    WasmAgentsError,
)
from wasm_agents.events import LEVELS, Events
from wasm_agents.sandbox.guest_json import no_constant
from wasm_agents.sandbox.guests import stop_process_guests
from wasm_agents.sandbox.scratch import remove_process_scratch
from wasm_agents.artifacts.signing import TRUSTED_KEYS_ENV

if TYPE_CHECKING:
    from wasm_agents.console import BatchProgress

trusted_key_option = click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help=f"Require a signature by this public key (.pub file, or a folder of them); repeatable. "
    f"Default: the paths in ${TRUSTED_KEYS_ENV}, if set.",
)


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
@click.option("--sign", "signing_key", type=click.Path(path_type=Path), help="Sign dist/ with this private key file (see keygen).")
def build(
    project: Path, dist: Path | None, allow_unsafe_sources: bool, offline: bool, quiet: bool, log_format: str, signing_key: Path | None
) -> None:
    """Discover the agents of PROJECT, vendor their deps, build their components and package dist/."""
    from wasm_agents.build import build as build_project

    options: dict[str, Any] = {
        "allow_unsafe_sources": allow_unsafe_sources,
        "offline": offline,
        "signing_key": signing_key,
        "command": ["wasm-agents", *sys.argv[1:]],
    }
    if log_format == "json":
        events = Events(None if quiet else sys.stderr)
        result = build_project(
            project, dist, **options,
            progress=lambda phase, agent, state: events.emit(f"build.{phase}", agent=agent, state=state),
            notice=lambda message: events.emit("build.notice", "warning", message=message),
        )
        events.emit(
            "build.done", dist=str(result.dist), seconds=result.seconds, cached=list(result.cached_components),
            signed_by=result.manifest.signed_by,
        )
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    stderr = Console(stderr=True)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=stderr, disable=quiet, transient=False,
    ) as bars:
        tasks: dict[str, Any] = {}

        def progress(phase: str, agent: str, state: str) -> None:
            label = {
                "vendor": "Vendoring dependencies", "componentize": "Building components", "image": "Importing scientific agents",
                "compile": "Compiling for this host, once (minutes)",
            }[phase]  # fmt: skip
            if phase not in tasks:
                tasks[phase] = bars.add_task(label, total=None)
            if state != "start":
                bars.advance(tasks[phase])
            bars.update(tasks[phase], description=f"{label} ({agent}{', cached' if state == 'cached' else ''})")

        def notice(message: str) -> None:
            if not quiet:
                bars.console.print(f"note: {message}", markup=False, highlight=False)

        result = build_project(project, dist, **options, progress=progress, notice=notice)
        for task in tasks.values():
            bars.update(task, total=bars.tasks[task].completed)
    if not quiet:
        signed = f", signed by key {result.manifest.signed_by}" if result.manifest.signed_by else ""
        count = len(result.manifest.project.agents)
        stderr.print(f"Built {count} agent{'s' if count != 1 else ''} into {result.dist}{signed} in {result.seconds:.1f} s")


@cli.command()
@click.argument("name", type=click.Path(path_type=Path))
def keygen(name: Path) -> None:
    """Write a new Ed25519 key pair: NAME.key (private, mode 600) and NAME.pub (to trust)."""
    from wasm_agents.artifacts.signing import generate_keypair

    key = generate_keypair(name)
    click.echo(f"Key {key}: private key {name}.key (keep it secret: sign with build --sign), public key {name}.pub (to trust)")


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
@trusted_key_option
def verify(dist: Path, trusted_keys: tuple[Path, ...]) -> None:
    """Check every byte of DIST against its manifests, and its signature if keys are trusted; list each problem."""
    from wasm_agents.artifacts import trust_policy, verify_dist

    verified = verify_dist(dist, trust_policy(trusted_keys, os.environ))
    count = len(verified.manifest.files) + 2 + (verified.signed_by is not None)
    click.echo(f"OK: {dist}: {count} files verified; {_signature_status(verified.signed_by, verified.signature_checked)}")


def _signature_status(key: str | None, checked: bool) -> str:
    """Say who signed a verified dist and whether that was checked."""
    if key is None:
        return "unsigned"
    if checked:
        return f"signed by trusted key {key}"
    return f"signed by key {key} (not checked: no trusted keys given)"


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@trusted_key_option
def inspect(dist: Path, as_json: bool, trusted_keys: tuple[Path, ...]) -> None:
    """Show the agents, chain order, dependencies, sizes, hashes, tool versions and signer of a verified DIST."""
    from wasm_agents.inspection import describe
    from wasm_agents.artifacts import trust_policy

    description = describe(dist, trust_policy(trusted_keys, os.environ))
    if as_json:
        click.echo(json.dumps(description, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    agents = Table(title=f"Agents (chain: {' -> '.join(description['chain']['order'])})")
    for column in ("agent", "folder", "limits", "may delegate to", "dependencies", "component or image"):
        agents.add_column(column, overflow="fold")  # wrapped, never cut: a hash or version must be read whole
    for name, agent in description["agents"].items():
        limits = agent["limits"]
        code = agent.get("component") or agent["image"]
        agents.add_row(
            name,
            agent["folder"] + "/",
            f"{limits['memory_mb']} MiB, {limits['wall_time_s']:g} s" + (f", fuel {limits['fuel']}" if "fuel" in limits else ""),
            (", ".join(agent["may_delegate_to"]) or "none") if "may_delegate_to" in agent else "any",
            ", ".join(f"{d['name']} {d['version']}" for d in agent["dependencies"]) or "-",
            f"{code['size'] / 1e6:.1f} MB {code['sha256'][:12]}" + (" (scientific)" if "image" in agent else ""),
        )
    console.print(agents)
    files = Table(title="Files")
    for column in ("file", "size", "sha256"):
        files.add_column(column, overflow="fold")
    for path, entry in description["files"].items():
        files.add_row(path, f"{entry['size']:,}", entry["sha256"])
    console.print(files)
    console.print("Tools: " + ", ".join(f"{k} {v}" for k, v in description["tools"].items()))
    signature = description["signature"]
    console.print("Signature: " + _signature_status(signature and signature["key_id"], bool(signature and signature["checked"])))


@cli.command()
@click.argument("events_path", metavar="EVENTS", type=click.Path(path_type=Path))
@click.option("--output", "-o", "output_path", required=True, type=click.Path(path_type=Path), help="The HTML file to write.")
def trace(events_path: Path, output_path: Path) -> None:
    """Write the chains of EVENTS (run --events FILE --log-level debug; - reads stdin) as a timeline: one self-contained HTML file."""
    from wasm_agents.timeline import read_events, write_page

    timeline = read_events(events_path)
    if timeline.skipped:
        count = len(timeline.skipped)
        what = "line that is not an event" if count == 1 else "lines that are not events"
        click.echo(f"note: {events_path}: skipped {count} {what} (the first: line {timeline.skipped[0]})", err=True)
    if not timeline.chains:
        raise WasmAgentsError(f"{events_path}: no chain events in it (write them with: wasm-agents run DIST --events FILE --log-level debug)")
    write_page(timeline, output_path)
    outcomes = [chain.outcome for chain in timeline.chains]
    unfinished = f", {outcomes.count(None)} unfinished" if None in outcomes else ""
    hops = sum(len(chain.hops) for chain in timeline.chains)
    click.echo(
        f"Wrote {output_path}: {len(outcomes)} chain{'s' if len(outcomes) != 1 else ''} ({outcomes.count('ok')} ok, "
        f"{outcomes.count('error')} failed{unfinished}), {hops} hop{'s' if hops != 1 else ''}"
    )


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
def init(directory: Path) -> None:
    """Create a project in DIRECTORY: a root agent, a helper agent and a sample tasks file, ready to build and run."""
    from wasm_agents.scaffold import init as make_project

    make_project(directory)
    click.echo(
        f"Created {directory}/ with agent/ (the root), agent-counter/ and tasks.jsonl. Next:\n"
        f"  wasm-agents build {directory}\n  wasm-agents run {directory}/dist --task-file {directory}/tasks.jsonl"
    )


@cli.command()
@click.argument("name")
@click.argument("project", type=click.Path(path_type=Path), default=".")
def new(name: str, project: Path) -> None:
    """Scaffold agent-NAME/ in PROJECT with a working main.py, requirements.txt and a commented agent.toml."""
    from wasm_agents.scaffold import scaffold

    folder = scaffold(name, project)
    click.echo(f"Created {folder}/ (build with: wasm-agents build {project})")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def cache(context: click.Context, as_json: bool) -> None:
    """Show the caches (the same as `cache show`); `cache clean` removes them."""
    if context.invoked_subcommand is None:
        context.invoke(cache_show, as_json=as_json)


@cache.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def cache_show(as_json: bool) -> None:
    """Show each cache (a folder of the cache root, named in the title) with its entries, size and what it holds."""
    from wasm_agents.caches import caches, table
    from wasm_agents.paths import cache_root

    found = caches()
    if as_json:
        click.echo(json.dumps({"root": str(cache_root()), "caches": [c.to_json() for c in found]}, indent=2))
        return
    from rich.console import Console

    Console().print(table(found, cache_root()))


@cache.command("clean")
@click.argument("names", nargs=-1)
@click.option("--older-than", type=click.FloatRange(min=0), metavar="DAYS", help="Only entries not used (read or written) for DAYS days.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def cache_clean(names: tuple[str, ...], older_than: float | None, as_json: bool) -> None:
    """Remove the entries of the caches NAMES (default: all) and say what was freed; each is remade when next needed."""
    from rich.filesize import decimal

    from wasm_agents.caches import clean

    cleaned = clean(names, older_than_days=older_than)
    if as_json:
        click.echo(json.dumps({"caches": [c.to_json() for c in cleaned], "freed": sum(c.freed for c in cleaned)}, indent=2))
        return
    for done in cleaned:
        if done.removed or done.freed or done.in_use:
            in_use = f"; kept {done.in_use} in use by a running process" if done.in_use else ""
            click.echo(f"{done.name}: removed {done.removed} entr{'y' if done.removed == 1 else 'ies'}, {decimal(done.freed)}{in_use}")
    click.echo(f"Freed {decimal(sum(c.freed for c in cleaned))}")


@cli.command()
@click.argument("dist", type=click.Path(path_type=Path))
@click.option("--task", "task_text", help="One task as JSON.")
@click.option("--task-file", type=click.Path(path_type=Path), help="Tasks as JSON lines, one per line; - reads them from stdin.")
@click.option("--concurrency", "-j", type=click.IntRange(1, 1024), default=1, show_default=True, help="Chains run at once.")
@click.option("--events", "events_path", type=click.Path(path_type=Path), help="Write events to FILE instead of stderr.")
@click.option("--log-level", type=click.Choice(list(LEVELS)), default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Events as short lines (text) or JSON lines. Default: text when they go to a terminal, else json.")
@trusted_key_option
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True, help="Run chains in this process, or on Ray (pip install 'wasm-agents[ray]').")
@click.option("--workers", type=click.IntRange(0, 1024), help="With --backend local: worker processes the chains of a batch run in, up to --concurrency (default: one per core when -j is 2 or more and the batch is large enough to pay for starting them; 0: threads of this process).")
@click.option("--ray-address", help="With --backend ray: the cluster to join (default: start a local Ray for this run).")
@click.option("--ray-workers", type=click.IntRange(1, 100_000), help="With --backend ray: worker actors (default: the cluster's CPUs).")
@click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True, help="With --backend ray: retries of a task whose worker died.")
@click.option("--output", "output_path", type=click.Path(path_type=Path), help="Also append each result to FILE as soon as it finishes (made durable line by line).")
@click.option("--resume", is_flag=True, help="With --output: keep the results FILE holds and run only the tasks without one.")
@click.option("--unordered", is_flag=True, help="Print each result as soon as it finishes, not in task order.")
@click.option("--trace", "trace_path", type=click.Path(path_type=Path), help="Also write the run's timeline to FILE (HTML, as the trace command does), at debug level whatever --log-level says.")
def run(
    dist: Path, task_text: str | None, task_file: Path | None, concurrency: int, events_path: Path | None, log_level: str,
    trusted_keys: tuple[Path, ...], backend: str, workers: int | None, ray_address: str | None, ray_workers: int | None, retries: int,
    output_path: Path | None, resume: bool, unordered: bool, trace_path: Path | None, log_format: str | None,
) -> None:
    """Verify DIST (and its signature if keys are trusted), then run each task through its agent chain; one JSON result per task on stdout."""
    from wasm_agents.artifacts import trust_policy
    from wasm_agents.backends import Local, Ray, run_tasks
    from wasm_agents.journal import Journal

    if (dist / "agent").is_dir() and not (dist / "manifest.json").exists():
        raise WasmAgentsError(f"{dist}: this is a project folder, not a dist; did you mean {dist / 'dist'}? (build it with: wasm-agents build {dist})")
    tasks = _read_tasks(task_text, task_file)
    if resume and output_path is None:
        raise WasmAgentsError("--resume needs --output FILE: the results file to resume")
    trust = trust_policy(trusted_keys, os.environ)
    options = Ray(ray_address, ray_workers, retries) if backend == "ray" else Local(concurrency, workers)
    journal = Journal(output_path, tasks, resume=resume) if output_path else None
    done = journal.done if journal else {}
    todo = [index for index in range(len(tasks)) if index not in done]
    failed_before = not all(done.values())  # a task the results file already holds as failed
    results = _claim_stdout()
    with _events_stream(events_path) as stream, _recording(_run_events(stream, log_level, log_format), trace_path) as events:
        if not todo:
            _exit(EXIT_AGENT_FAILED if failed_before else EXIT_OK)
        stop = threading.Event()
        try:
            lines = run_tasks(dist, tasks, options, events=events, trust=trust, indexes=todo, stop=stop)
        except ModuleNotFoundError as missing:
            raise WasmAgentsError(f"--backend {backend}: {missing.name} is not installed (pip install 'wasm-agents[{backend}]')") from None
        # stdout gets the lines in task order (or as they finish, --unordered); the journal gets each as soon as it finishes.
        finished: dict[int, str] = {}
        printed = 0
        tally = _Tally()
        progress = _batch_progress(len(todo), events_path, log_format)
        if progress:
            progress.start()
        try:
            with _interrupt_sets(stop):  # so no line is lost to a KeyboardInterrupt between two statements
                for line in lines:
                    text = finished[line["index"]] = _encode(line)  # before the journal: stdout never misses a saved line
                    if journal:
                        journal.append(text)
                    tally.add(line)
                    if progress:
                        progress.add(line["ok"])
                    if unordered:
                        results.write(finished.pop(line["index"]) + "\n")
                    while not unordered and printed < len(todo) and todo[printed] in finished:
                        results.write(finished.pop(todo[printed]) + "\n")
                        printed += 1
                    results.flush()
            if stop.is_set():  # Ctrl-C: the backend handed over every line finished by then, and stopped
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            if progress:
                progress.stop()  # before anything else is printed
            lines.close()  # cancels outstanding tasks and stops the workers before exiting (after a second Ctrl-C)
            for index in sorted(finished):  # what finished behind a task still running is kept too
                results.write(finished[index] + "\n")
            results.flush()
            tally.report(len(todo), interrupted=True)
            raise
        finally:
            if progress:
                progress.stop()
    tally.report(len(todo))
    _exit(EXIT_AGENT_FAILED if failed_before or tally.failed else EXIT_OK)


class _Tally:
    """Counts and chain times of a batch, for the one summary line a person at a terminal gets on stderr."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.ok = self.failed = 0
        self.durations: list[float] = []

    def add(self, line: dict[str, Any]) -> None:
        """Count one finished task."""
        self.ok += line["ok"]
        self.failed += not line["ok"]
        if isinstance(line.get("duration_ms"), (int, float)):
            self.durations.append(line["duration_ms"])

    def report(self, tasks: int, *, interrupted: bool = False) -> None:
        """Print the summary line, on a terminal only: pipes and files keep exactly what they had."""
        if not sys.stderr.isatty():
            return
        times = sorted(self.durations) or [0.0]
        p50, p95 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))]
        stopped = f", stopped after {self.ok + self.failed} of {tasks}" if interrupted else ""
        click.echo(
            f"{tasks} task{'s' if tasks != 1 else ''}: {self.ok} ok, {self.failed} failed{stopped} in "
            f"{time.monotonic() - self.start:.1f} s (chain p50 {p50:.0f} ms, p95 {p95:.0f} ms)",
            err=True,
        )


def _encode(line: dict[str, Any]) -> str:
    """Return one output line as strict JSON; a line that cannot be one becomes its task's error."""
    try:
        return json.dumps(line, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as error:
        failure = Failure(ErrorKind.NOT_SERIALIZABLE, f"the result cannot be written as strict JSON: {error}")
        head = {key: line[key] for key in ("index", "id", "run_id") if key in line}
        return json.dumps({**head, "ok": False, "error": failure.to_json()})


def _run_events(stream: TextIO, level: str, log_format: str | None) -> Events:
    """The events of `run`: short lines when a person watches stderr or text is asked for (see console.py), else JSON
    lines, with a spinner while a component is compiled when stderr is a terminal."""
    if log_format == "text" or (log_format is None and stream is sys.stderr and sys.stderr.isatty()):
        from rich.console import Console

        from wasm_agents.console import ConsoleEvents, stderr_console

        return ConsoleEvents(stderr_console() if stream is sys.stderr else Console(file=stream), level)
    if not sys.stderr.isatty():
        return Events(stream, level)
    from wasm_agents.console import SpinningEvents, stderr_console

    return SpinningEvents(stream, level, stderr_console())


def _batch_progress(tasks: int, events_path: Path | None, log_format: str | None) -> "BatchProgress | None":
    """A batch's progress bar on stderr: on a terminal, for more than one task, and not among JSON events; else None."""
    if tasks < 2 or not sys.stderr.isatty() or (events_path is None and log_format == "json"):
        return None
    from wasm_agents.console import BatchProgress, stderr_console  # rich: ~50 ms of imports, paid only where it draws

    return BatchProgress(stderr_console(), tasks)


def _recording(events: Events, path: Path | None) -> AbstractContextManager[Events]:
    """Yield `events`, or with --trace FILE a recorder of them that writes the timeline there (see timeline.recording)."""
    if path is None:
        return nullcontext(events)
    from wasm_agents.timeline import recording

    return recording(events, path)


@contextmanager
def _interrupt_sets(stop: threading.Event) -> Iterator[None]:
    """Make a first Ctrl-C set `stop`, and a second one raise KeyboardInterrupt (SIGINT ignored or handled by the caller is left so)."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _claim_stdout() -> TextIO:
    """Keep stdout for results alone: return a stream on it, and send anything else written there to stderr.

    Libraries print to stdout (Ray's raylet notices, wasmtime-py's callback errors), from Python or C.
    """
    sys.stdout.flush()
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return results


def _read_tasks(task_text: str | None, task_file: Path | None) -> list[Any]:
    if (task_text is None) == (task_file is None):
        raise WasmAgentsError("give exactly one of --task JSON or --task-file FILE")
    if task_text is not None:
        try:
            return [_strict_json(task_text)]
        except ValueError as error:
            raise WasmAgentsError(f"--task: not valid JSON: {error}") from None
    try:
        text = sys.stdin.buffer.read().decode("utf-8") if str(task_file) == "-" else task_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise WasmAgentsError(f"{task_file}: cannot read tasks: {error}") from None
    task_file = "stdin" if str(task_file) == "-" else task_file
    lines = text.splitlines()
    tasks = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                tasks.append(_strict_json(line))
            except ValueError as error:
                raise WasmAgentsError(f"{task_file}:{number}: not valid JSON: {error}") from None
    if not tasks:
        raise WasmAgentsError(f"{task_file}: no tasks")
    return tasks


def _strict_json(text: str) -> Any:
    """Parse one task: JSON as agents receive it, so without NaN or Infinity."""
    return json.loads(text, parse_constant=no_constant)


@contextmanager
def _events_stream(path: Path | None) -> Iterator[TextIO]:
    """Where events go: stderr, or FILE (appended to) with --events FILE."""
    if path is None:
        yield sys.stderr
        return
    try:
        stream = path.open("a", encoding="utf-8")
    except OSError as error:
        raise WasmAgentsError(f"{path}: cannot write events: {error}") from None
    with stream:
        yield stream


def _exit(code: int) -> NoReturn:
    """Leave without interpreter teardown: wasmtime's runtime threads can abort the process during it."""
    stop_process_guests()  # guests still running (Ctrl-C) are stopped first: none writes in a folder being removed
    remove_process_scratch()  # atexit handlers do not run on this way out
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> NoReturn:
    """Entry point of the console script."""
    try:
        code = cli.main(standalone_mode=False)
    except VerificationError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        _exit(error.exit_code)
    except WasmAgentsError as error:
        click.echo(f"error: {error}", err=True)
        _exit(error.exit_code)
    except click.exceptions.Exit as done:
        _exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        _exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        _exit(130)
    except KeyboardInterrupt:
        _exit(130)
    _exit(code if isinstance(code, int) else EXIT_OK)
