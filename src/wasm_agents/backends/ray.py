"""The Ray backend: chains spread over a Ray cluster, one warm Runner per worker actor.

The dist travels once through Ray's object store, named by its SHA256; every worker checks that hash,
unpacks it and runs the full verification (and signature policy) itself before running anything: the
transport is not trusted. Results come back in task order, exactly as the local backend prints them.
"""

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError

from wasm_agents.backends import POLL_S, Ray, output_line
from wasm_agents.artifacts import TrustPolicy
from wasm_agents.artifacts.archive import write_reproducible_tar
from wasm_agents.errors import ErrorKind, Failure, VerificationError, WasmAgentsError
from wasm_agents.events import Events
from wasm_agents.sandbox.guests import stop_process_guests
from wasm_agents.sandbox.scratch import remove_process_scratch

IN_FLIGHT_PER_WORKER = 2  # batches queued on a worker, so it never waits for the driver between two
CHAINS_AT_ONCE = 2  # chains of a batch a worker runs at once, as `run --concurrency` does locally
MAX_BATCH = 16  # chains per Ray call: batching pays Ray's per-call cost once for many chains
CLOSE_TIMEOUT_S = 10  # for workers to clean up before they are killed (a close takes ~1 s at most)


# close() has a thread of its own: it must not wait for the batch running in run(), whose guests it stops.
@ray.remote(concurrency_groups={"close": 1})
class ChainWorker:
    """A Ray actor holding one verified Runner: engine, compiled components and warm pool, made once."""

    def __init__(self, bundle: bytes, sha256: str, trust: TrustPolicy | None, log_level: str) -> None:
        from wasm_agents.orchestrator import Runner

        self.node_id = ray.get_runtime_context().get_node_id()
        self.problems: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="wasm-agents-ray-"))
        self.buffer = io.StringIO()
        self.runner = None
        self.pool = ThreadPoolExecutor(CHAINS_AT_ONCE, thread_name_prefix="wasm-agents-chain")
        actual = hashlib.sha256(bundle).hexdigest()
        if actual != sha256:
            self.problems = [f"dist bundle: sha256 mismatch in transit: expected {sha256}, got {actual}"]
            return
        try:
            with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as archive:
                archive.extractall(self.workdir / "dist", filter="data")
            self.runner = Runner(self.workdir / "dist", Events(self.buffer, log_level), trust=trust)
        except VerificationError as error:
            self.problems = error.problems
        except (WasmAgentsError, tarfile.TarError, OSError) as error:
            self.problems = [f"dist bundle: {error}"]

    def ready(self) -> dict[str, Any]:
        """Report this worker's identity and whether its dist verified."""
        return {"node_id": self.node_id, "pid": os.getpid(), "problems": self.problems}

    def run(self, tasks: list[Any]) -> dict[str, Any]:
        """Run a batch of chains; return their results in order and the events they emitted."""
        assert self.runner is not None, "run() on a worker whose dist did not verify"
        results = [result.to_json() for result in self.pool.map(self.runner.run, tasks)]
        events = self.buffer.getvalue()  # calls on one actor run one at a time: these are this batch's events
        self.buffer.seek(0)
        self.buffer.truncate()
        return {"results": results, "events": events, "node_id": self.node_id, "pid": os.getpid()}

    @ray.method(concurrency_group="close")
    def close(self) -> None:
        """Stop the guests still running, release the runner and remove the unpacked dist and this process's scratch
        folders (the actor is killed next)."""
        stop_process_guests()
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.runner is not None:
            self.runner.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        remove_process_scratch()


def run_on_ray(
    dist: Path, tasks: list[Any], indexes: list[int], options: Ray, *, events: Events, trust: TrustPolicy | None,
    stop: threading.Event,
) -> Iterator[dict[str, Any]]:
    """Run the tasks at `indexes` on Ray (a local instance unless `options.address` is given); yield each line as it
    finishes, until `stop` is set."""
    bundle = _bundle(dist)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield from _Schedule(bundle, tasks, events, options, trust).run(indexes, stop)
    finally:
        if started_here:
            ray.shutdown()


class _Schedule:
    """Keeps every worker busy, replaces dead ones, retries their tasks, and hands lines over as they finish."""

    def __init__(self, bundle: bytes, tasks: list[Any], events: Events, options: Ray, trust: TrustPolicy | None) -> None:
        self.bundle_ref = ray.put(bundle)
        self.sha256 = hashlib.sha256(bundle).hexdigest()
        self.tasks = tasks
        self.events = events
        self.retries = options.retries
        self.trust = trust
        self.size = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.workers: list[Any] = []
        self.attempts = [0] * len(tasks)
        self.pending: dict[Any, tuple[list[int], Any]] = {}  # object ref -> (task indexes, worker)
        self.done: list[dict[str, Any]] = []  # lines finished and not handed over yet

    def run(self, indexes: list[int], stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Yield one line for each task of `indexes`, as soon as it is done, until `stop` is set."""
        # At least ~4 batches per worker, so the work stays spread when chains take unequal time.
        self.batch = max(1, min(MAX_BATCH, len(indexes) // (4 * self.size)))
        self.workers = [self._start_worker() for _ in range(self.size)]
        queue = list(indexes)
        left = len(indexes)
        try:
            while left:
                stopping = stop.is_set()
                while not stopping and queue and len(self.pending) < IN_FLIGHT_PER_WORKER * len(self.workers):
                    self._submit(queue[: self.batch])
                    del queue[: self.batch]
                if stopping:  # hand over the batches done by now, and no more
                    ready, _ = ray.wait(list(self.pending), num_returns=len(self.pending), timeout=0) if self.pending else ([], [])
                else:  # never an unbounded wait: this thread must wake to see `stop` (see POLL_S)
                    ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    batch, worker = self.pending.pop(ref)
                    try:
                        answer = ray.get(ref)
                    except RayActorError as lost:
                        queue[:0] = self._lost(batch, worker, lost)
                        continue
                    self._forward_events(answer)
                    for index, result in zip(batch, answer["results"], strict=True):
                        line = {**result, "worker": {"node_id": answer["node_id"], "pid": answer["pid"]}}
                        if self.attempts[index] > 1:
                            line["attempts"] = self.attempts[index]
                        self.done.append(output_line(index, self.tasks[index], line))
                left -= len(self.done)
                yield from self.done
                self.done.clear()
                if stopping:
                    return
        finally:
            for ref in self.pending:
                ray.cancel(ref)
            self._stop(self.workers)

    def _start_worker(self) -> Any:
        worker = ChainWorker.remote(self.bundle_ref, self.sha256, self.trust, self.events.level)
        report = ray.get(worker.ready.remote())
        if report["problems"]:
            self._stop([worker])
            raise VerificationError([f"worker on node {report['node_id'][:12]}: {p}" for p in report["problems"]])
        self.events.emit("ray.worker.ready", "debug", **{"ray.node_id": report["node_id"], "ray.worker_pid": report["pid"]})
        return worker

    @staticmethod
    def _stop(workers: list[Any]) -> None:
        """Let the workers clean up, all at once, then kill them (a dead or stuck one all the same)."""
        closing = [worker.close.remote() for worker in workers]
        ray.wait(closing, num_returns=len(closing), timeout=CLOSE_TIMEOUT_S)
        for worker in workers:
            ray.kill(worker)

    def _submit(self, indexes: list[int]) -> None:
        worker = min(self.workers, key=lambda w: sum(1 for _, busy in self.pending.values() if busy is w))
        for index in indexes:
            self.attempts[index] += 1
        self.pending[worker.run.remote([self.tasks[index] for index in indexes])] = (indexes, worker)

    def _lost(self, indexes: list[int], worker: Any, lost: Exception) -> list[int]:
        """A worker died under a batch: replace the worker, then retry each task or report it failed."""
        if worker in self.workers:
            self.workers[self.workers.index(worker)] = self._start_worker()
        retried = []
        for index in indexes:
            message = f"Ray worker lost while running task {index}: {str(lost).splitlines()[0]}"
            self.events.emit("ray.task.lost", "warning", index=index, attempt=self.attempts[index], message=message)
            if self.attempts[index] <= self.retries:
                retried.append(index)
                continue
            error = Failure(ErrorKind.WORKER_LOST, f"{message} (gave up after {self.attempts[index]} attempts)").to_json()
            self.done.append(output_line(index, self.tasks[index], {"ok": False, "error": error, "attempts": self.attempts[index]}))
        return retried

    def _forward_events(self, answer: dict[str, Any]) -> None:
        for line in answer["events"].splitlines():
            self.events.forward(line, {"ray.node_id": answer["node_id"], "ray.worker_pid": answer["pid"]})


def _bundle(dist: Path) -> bytes:
    """Pack `dist` reproducibly, so the same dist always has the same bundle hash."""
    with tempfile.TemporaryDirectory(prefix="wasm-agents-bundle-") as work:
        archive = Path(work) / "dist.tar.gz"
        write_reproducible_tar(dist, archive)
        return archive.read_bytes()
