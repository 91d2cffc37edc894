"""Worker processes of the local backend: each holds a Runner of its own (engine, compiled components) and runs the
chains its parent sends it, so that chains run side by side instead of sharing one GIL.

A worker is a fresh interpreter (`python -m wasm_agents.backends.workers FD`), never a fork: a forked child would
inherit the locks of the parent's threads, and wasmtime engines without their epoch ticker (no wall-time limit).
It gets the VerifiedDist its parent made, over a private socket, so it never reads a dist nobody verified; the
parent has compiled the components into this host's cache first, so a worker only deserializes them. What a worker
sends back is bytes and JSON, never a pickle: a parent does not unpickle what a process running guests sends it.
"""

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

from wasm_agents.artifacts import TrustPolicy, VerifiedDist, verify_dist
from wasm_agents.backends import POLL_S, output_line
from wasm_agents.errors import ErrorKind, Failure, VerificationError, WasmAgentsError
from wasm_agents.events import Events
from wasm_agents.orchestrator import Runner
from wasm_agents.sandbox import LOG_LEVELS
from wasm_agents.sandbox.compile_cache import compiled_path
from wasm_agents.sandbox.guests import STOP_ADVANCE_S, STOP_WAIT_S, stop_process_guests
from wasm_agents.sandbox.scratch import remove_process_scratch

# Sandboxes per agent a worker makes ahead of demand: none. A worker is busy with chains back to back, and making
# them on the pool's thread beside those chains costs more CPU than making each when it is needed (measured on
# 2 cores, 2 workers: 14.9 against 15.7-16.1 ms of CPU per chain; 129-132 against 102-119 chains/s).
WARM = 0
# How long a worker may take to leave once told to: its guests stopped (see Guests.stop), its scratch folders removed.
LEAVE_S = STOP_ADVANCE_S + STOP_WAIT_S + 0.5

# Messages from a worker: the first byte says what the rest is.
READY, EVENT, LINE, REFUSED = b"R", b"E", b"L", b"!"


def run_in_workers(
    dist: Path, tasks: list[Any], indexes: list[int], concurrency: int, count: int, *, events: Events,
    trust: TrustPolicy | None, stop: threading.Event,
) -> Iterator[dict[str, Any]]:
    """Verify `dist`, then run the tasks at `indexes` in `count` worker processes, `concurrency` chains at once in all;
    yield each one's line as it finishes, until `stop` is set (then the lines already sent, within POLL_S)."""
    shares = [concurrency // count + (number < concurrency % count) for number in range(count)]
    workers = [_Worker(share) for share in shares]  # their interpreters start while the dist is verified here
    finished = False
    try:
        verified = verify_dist(dist, trust, members=False)
        _compile(verified, events)
        if stop.is_set():  # while the dist was verified and compiled
            return
        level = next((level for level in LOG_LEVELS if events.enabled(level)), None)
        # An Events that does more than write what passes its level may look at the others too: a console notes
        # each agent's depth from its agent.start. A plain one would only throw them away, after the trip.
        starts = type(events).emit is not Events.emit
        finished = yield from _Schedule(tasks, events, partial(_Setup, verified, level, starts), workers).run(indexes, stop)
    finally:
        if finished:  # the workers are idle and leave at once
            _leave(workers)
        else:  # stopped early: the caller does not wait for the guests the workers still have to stop
            threading.Thread(target=_leave, args=(workers,), name="wasm-agents-workers-leaving", daemon=True).start()


@dataclass(frozen=True)
class _Setup:
    """What a worker is told first: the verified dist, the lowest level of event its parent writes (None: none),
    whether it sends every agent.start all the same, and how many chains it runs at once."""

    dist: VerifiedDist
    level: str | None
    starts: bool
    chains: int


class _Worker:
    """One worker process, the connection to it, and the tasks it holds (sent, their lines not back yet)."""

    def __init__(self, share: int) -> None:
        self.share = share
        self.connection, theirs = Pipe()
        # Its own session: Ctrl-C at a terminal reaches the parent only, which stops its workers itself.
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            stdout=2, start_new_session=True,  # what a library prints on stdout goes to stderr, as in `run`
        )
        theirs.close()
        self.held: set[int] = set()  # task indexes sent, their lines not back yet
        self.ready = False

    def send(self, message: Any) -> None:
        """Send the setup, a task or the word to leave; a worker that died meanwhile is noticed when read."""
        try:
            self.connection.send(message)
        except OSError:
            pass


class _Schedule:
    """Keeps every worker fed, replays their events here, hands lines over as they come, replaces a worker that dies."""

    def __init__(self, tasks: list[Any], events: Events, setup: Callable[[int], _Setup], workers: list[_Worker]) -> None:
        self.tasks = tasks
        self.events = events
        self.setup = setup  # given a worker's share of the chains
        self.workers = workers
        self.selector = selectors.DefaultSelector()
        for worker in workers:
            self._start(worker)

    def run(self, indexes: list[int], stop: threading.Event) -> Generator[dict[str, Any], None, bool]:
        """Yield one line for each task of `indexes`, as soon as it is back, until `stop` is set; return whether all were."""
        queue = deque(indexes)
        self._feed(queue)
        left = len(indexes)
        with self.selector:
            while left:
                stopping = stop.is_set()
                lines: list[dict[str, Any]] = []
                # Never an unbounded wait: this thread must wake to see `stop` (see POLL_S). Once stopping, all that is here.
                ready = self.selector.select(0 if stopping else POLL_S)
                while ready:
                    for key, _ in ready:
                        self._read(key.data, lines)
                    ready = self.selector.select(0) if stopping else []
                if not stopping:  # before the lines are handed over: the caller may take its time with each (--output syncs it)
                    self._feed(queue)
                left -= len(lines)
                yield from lines
                if stopping:
                    return False
        return True

    def _feed(self, queue: deque[int]) -> None:
        """Send tasks until every worker runs its share of the chains, the emptiest first.

        None waits in a worker behind a slow chain: a task starts only when a chain ends, wherever. (A second task held
        ready in each worker, to save the round trip, made no difference measured: 89 and 108 chains/s without it,
        90 and 91 with it, at -j 2 and 4.)
        """
        while queue:
            worker = min(self.workers, key=lambda worker: len(worker.held) / worker.share)
            if len(worker.held) >= worker.share:
                return
            index = queue.popleft()
            worker.held.add(index)
            worker.send((index, self.tasks[index]))

    def _start(self, worker: _Worker) -> None:
        """Listen to `worker` and tell it what to run."""
        self.selector.register(worker.connection, selectors.EVENT_READ, worker)
        worker.send(self.setup(worker.share))

    def _read(self, worker: _Worker, lines: list[dict[str, Any]]) -> None:
        """Take one message of `worker`; if it has died, fail the tasks it held and start a new worker in its place."""
        try:
            message = worker.connection.recv_bytes()
        except (EOFError, OSError):
            lines.extend(self._lost(worker))
            return
        kind, body = message[:1], message[1:]
        if kind == EVENT:
            _replay(self.events, body)
        elif kind == LINE:
            answer = json.loads(body)
            worker.held.remove(answer["index"])
            lines.append(output_line(answer["index"], self.tasks[answer["index"]], answer["result"]))
        elif kind == READY:
            worker.ready = True
        else:  # REFUSED: what the parent verified could not be loaded there
            refusal = json.loads(body)
            raise VerificationError(refusal["problems"]) if "problems" in refusal else WasmAgentsError(refusal["error"])

    def _lost(self, worker: _Worker) -> list[dict[str, Any]]:
        """A worker died: fail the tasks it ran (they may have run partly: never twice) and start another in its place."""
        self.selector.unregister(worker.connection)
        worker.connection.close()
        code = _ended(worker.process, time.monotonic() + LEAVE_S)
        if not worker.ready:
            raise WasmAgentsError(f"a worker process ended with exit code {code} before it could run chains (see its error above)")
        lines = []
        for index in sorted(worker.held):
            message = f"worker process {worker.process.pid} ended with exit code {code} while running task {index}"
            self.events.emit("worker.task.lost", "warning", index=index, worker_pid=worker.process.pid, message=message)
            lines.append(output_line(index, self.tasks[index], {"ok": False, "error": Failure(ErrorKind.WORKER_LOST, message).to_json()}))
        successor = _Worker(worker.share)
        self.workers[self.workers.index(worker)] = successor
        self._start(successor)
        return lines


def _compile(verified: VerifiedDist, events: Events) -> None:
    """Compile what this host's cache lacks, here and once, as the in-process Runner does (with its events): workers
    started together would all compile the same components."""
    compiled = ((verified.compiled_sha256(name), spec.limits.fuel is not None) for name, spec in verified.project.agents.items())
    if not all(compiled_path(sha256, fuel).is_file() for sha256, fuel in compiled):
        Runner(verified, events, warm=0).close()


def _replay(events: Events, data: bytes) -> None:
    """Emit an event a worker wrote as this process's own: filtered, shown and recorded here as if it happened here."""
    record = json.loads(data)
    name, level = record.pop("event.name"), record.pop("severity_text").lower()
    del record["severity_number"]
    events.emit(name, level, **record)  # its "timestamp" replaces this process's: the event keeps the time it happened


def _leave(workers: list[_Worker]) -> None:
    """Tell every worker to leave (they stop their guests and remove their scratch folders), then wait; kill a late one."""
    for worker in workers:
        worker.send(None)
    until = time.monotonic() + LEAVE_S
    for worker in workers:
        _ended(worker.process, until)
        worker.connection.close()


def _ended(process: "subprocess.Popen[bytes]", until: float) -> int:
    """Wait for a worker to end until the time.monotonic() `until`, kill it after that; return its exit code."""
    try:
        return process.wait(max(0.0, until - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


# --- in the worker -----------------------------------------------------------------------------------------------


class _Channel:
    """A worker's side of its connection: whole messages, from any of its threads; as a stream, one event per write."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()

    def send(self, kind: bytes, body: bytes = b"") -> None:
        """Send one message of `kind`."""
        with self._lock:
            self._connection.send_bytes(kind + body)

    def write(self, line: str) -> None:
        """Send one event line (what Events writes)."""
        self.send(EVENT, line.encode())

    def flush(self) -> None:
        """Nothing to flush: each write is a message."""


class _Relay(Events):
    """A worker's events, for its parent: those at `level` and above, and every agent.start, from which a console
    knows how deep each agent is in its chain (see ConsoleEvents)."""

    def __init__(self, channel: _Channel, level: str) -> None:
        super().__init__(channel, level)
        self._starts = Events(channel, "debug")

    def emit(self, name: str, level: str = "info", **fields: Any) -> None:
        """Send the event `name` when its level is shown or it starts an agent."""
        (self._starts if name == "agent.start" else super()).emit(name, level, **fields)


def serve(fd: int) -> NoReturn:
    """A worker's life: take the verified dist, then run each task sent until told to leave or the parent is gone."""
    connection = Connection(fd)
    try:
        _work(connection, _Channel(connection))
    except (EOFError, OSError):
        pass  # the parent is gone: nobody waits for these chains
    stop_process_guests()
    remove_process_scratch()
    os._exit(0)  # without interpreter teardown, as the command line leaves (see cli._exit)


def _work(connection: Connection, channel: _Channel) -> None:
    """Load the dist the parent sends, say whether that worked, then run the tasks that come, `setup.chains` at once."""
    setup: _Setup | None = connection.recv()
    if setup is None:  # told to leave before it was told what to run (the dist did not verify)
        return
    if setup.level is None:
        events = Events(None)
    else:
        events = _Relay(channel, setup.level) if setup.starts else Events(channel, setup.level)
    try:
        runner = Runner(setup.dist, events, warm=WARM)
    except VerificationError as error:  # a component changed after the parent verified it
        channel.send(REFUSED, json.dumps({"problems": error.problems}).encode())
        return
    except Exception as error:  # noqa: BLE001 - the parent reports it, as one line
        text = str(error) if isinstance(error, WasmAgentsError) else f"a worker process could not load the dist: {type(error).__name__}: {error}"
        channel.send(REFUSED, json.dumps({"error": text}).encode())
        return
    channel.send(READY)
    chains = ThreadPoolExecutor(setup.chains, thread_name_prefix="wasm-agents-chain")
    try:
        while (task := connection.recv()) is not None:
            chains.submit(_chain, runner, channel, *task)
    finally:  # told to leave, or the parent is gone: what has not started never starts, and nobody waits for the rest
        chains.shutdown(wait=False, cancel_futures=True)


def _chain(runner: Runner, channel: _Channel, index: int, task: Any) -> None:
    """Run one chain and send its line; a host bug fails this task only, as in the parent's own threads."""
    try:
        result = runner.run(task).to_json()
    except Exception as error:  # noqa: BLE001 - a host bug fails its own task, not the batch
        result = {"ok": False, "error": Failure(ErrorKind.HOST_ERROR, f"{type(error).__name__}: {error}").to_json()}
    try:
        channel.send(LINE, json.dumps({"index": index, "result": result}).encode())
    except OSError:
        pass  # the parent is gone


if __name__ == "__main__":
    serve(int(sys.argv[1]))
