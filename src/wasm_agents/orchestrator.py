"""The orchestrator: verify a dist once, then run chains of its agents, routing every delegation by policy."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasm_agents.artifacts import TrustPolicy, VerifiedDist, verify_dist
from wasm_agents.errors import ErrorKind, Failure
from wasm_agents.events import EventBudget, Events, new_span_id, new_trace_id
from wasm_agents.hints import limit_hint
from wasm_agents.project import SCIENTIFIC_RUNTIME
from wasm_agents.routing import Budget, Refusal, check_time, route, shown
from wasm_agents.sandbox import LOG_LEVELS, guest_json
from wasm_agents.sandbox.guest_json import utf8_size
from wasm_agents.sandbox.compile_cache import load_component
from wasm_agents.sandbox.engine import engines
from wasm_agents.sandbox.guests import Guests, process_guests
from wasm_agents.sandbox.invocation import Invocation, Outcome, invoke, ms_since
from wasm_agents.sandbox.pool import Mounts, SandboxMaker, WarmPool
from wasm_agents.tracebacks import readable_failure

if TYPE_CHECKING:
    from wasm_agents.network.exchange import Egress, Request
    from wasm_agents.scientific.sandbox import ScientificMaker



@dataclass(frozen=True)
class Hop:
    """Figures of one agent invocation within a chain."""

    agent: str
    span_id: str
    parent_span_id: str | None
    depth: int
    duration_ms: float
    outcome: str
    error_type: str | None = None
    fuel_used: int | None = None


@dataclass
class ChainResult:
    """The answer of one chain: its result or the failure where it started, and a figure per hop."""

    run_id: str
    ok: bool
    result: Any = None
    failure: Failure | None = None
    duration_ms: float = 0.0
    hops: list[Hop] = field(default_factory=list)

    @property
    def error(self) -> dict[str, Any] | None:
        """The failure as it is printed: type, message, traceback and agent."""
        return self.failure and self.failure.to_json()

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object printed for this chain."""
        data: dict[str, Any] = {"ok": self.ok, "run_id": self.run_id}
        if self.ok:
            data["result"] = self.result
        else:
            data["error"] = self.error
        data["duration_ms"] = self.duration_ms
        data["hops"] = [{k: v for k, v in asdict(hop).items() if v is not None} for hop in self.hops]
        return data


@dataclass
class _Frame:
    agent: str
    span_id: str
    stack: tuple[str, ...]  # the root first, this agent last
    invocation: Invocation | None = None
    failed_delegations: list[Failure] = field(default_factory=list)  # where each failed delegation of this agent started
    egress: "Egress | None" = None  # made at its first HTTP request

    @property
    def depth(self) -> int:
        return len(self.stack) - 1

    @property
    def deadline(self) -> float:
        """This agent's own deadline: it delegates only while it runs, and by then its deadline is set."""
        return self.invocation.deadline


class _Chain:
    def __init__(self, run_id: str, deadline: float) -> None:
        self.run_id = run_id
        self.deadline = deadline
        self.hops: list[Hop] = []
        self.lock = threading.Lock()


class Runner:
    """Run tasks through the agent chain of one verified dist: `Runner(dist).run(task)`.

    `dist` is a VerifiedDist, or the path of a dist to verify now (under `trust`, if given). Fresh
    sandboxes are made ahead of demand, `warm` per agent; `guests` caps how many run at once (default:
    the process's, shared by every Runner).
    """

    def __init__(
        self,
        dist: Path | VerifiedDist,
        events: Events | None = None,
        *,
        warm: int = 2,
        trust: TrustPolicy | None = None,
        guests: Guests | None = None,
    ) -> None:
        # Before anything from the dist is compiled or run; with `trust`, only a dist signed by a trusted key passes.
        # The archives' members are checked as they are unpacked (once per host: see VerifiedDist.unpacked).
        self.dist = dist if isinstance(dist, VerifiedDist) else verify_dist(Path(dist), trust, members=False)
        self.project = self.dist.project
        self.events = events or Events(None)
        self.guests = guests or process_guests()
        self.engines = engines()
        self._makers = {name: self._maker(name) for name in self.project.agents}
        # Each sandbox still serves one invocation only.
        self._pool = WarmPool(warm)
        for name, maker in self._makers.items():
            self._pool.add(name, maker.make)

    def maker(self, agent: str) -> "SandboxMaker | ScientificMaker":
        """Return what fresh sandboxes of `agent` are made of."""
        return self._makers[agent]

    def run(self, task: Any, *, run_id: str | None = None) -> ChainResult:
        """Run one task through the chain, starting at the root agent."""
        start = time.monotonic()
        chain = _Chain(run_id or new_trace_id(), start + self.project.policy.wall_time_s)
        self.events.emit("chain.start", "debug", trace_id=chain.run_id)
        root = self.project.policy.order[0]
        outcome, origin = self._invoke(chain, root, json.dumps(task), None)
        for hop in chain.hops:  # refill once the chain is done, so making sandboxes never slows its hops
            self._pool.refill(hop.agent)
        result = ChainResult(run_id=chain.run_id, ok=outcome.ok, result=outcome.result, hops=chain.hops, failure=origin)
        result.duration_ms = ms_since(start)
        self.events.emit(
            "chain.end",
            "info" if result.ok else "error",
            trace_id=chain.run_id,
            duration_ms=result.duration_ms,
            outcome="ok" if result.ok else "error",
            hops=len(chain.hops),
            **({} if result.ok else {"error.type": str(result.failure.type), "error.agent": result.failure.agent}),
        )
        return result

    def close(self) -> None:
        """Drop the sandboxes made ahead of demand."""
        self._pool.close()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _maker(self, name: str) -> "SandboxMaker | ScientificMaker":
        spec = self.project.agents[name]
        fuel = spec.limits.fuel is not None
        folders = self.dist.agent_folders(name)
        scratch_mb = spec.scratch_mb if spec.scratch else None
        compiling = partial(self._compiling, name)
        if spec.runtime == SCIENTIFIC_RUNTIME:
            # Imported only for a dist with such agents: a run of components never loads the scientific runtime's code.
            from wasm_agents.scientific.image import open_image
            from wasm_agents.scientific.module import load_module
            from wasm_agents.scientific.sandbox import ScientificMaker, mounts
            from wasm_agents.scientific.wheel import RuntimeFiles

            path, sha256 = self.dist.scientific_module()
            module = load_module(self.engines.engine(fuel), RuntimeFiles(path, sha256, folders.stdlib), fuel, compiling=compiling)
            image = open_image(self.dist.image(name), sha256)
            return ScientificMaker(self.engines, module, image, spec.limits, mounts(folders, scratch_mb))
        path, entry = self.dist.component(name)
        component = load_component(self.engines.engine(fuel), path, entry.sha256, fuel, compiling=compiling)
        return SandboxMaker(self.engines, component, spec.limits, Mounts.of(folders, scratch_mb))

    @contextmanager
    def _compiling(self, agent: str) -> Iterator[None]:
        """Say that `agent`'s component is being compiled for this host (a slow step `build` usually took), then how long it took."""
        self.events.emit("sandbox.compile.start", "debug", agent=agent, message=f"compiling agent '{agent}' for this host (once; cached)")
        start = time.monotonic()
        yield
        message = f"compiled agent '{agent}' for this host (cached for later runs)"
        self.events.emit("sandbox.compile", "info", agent=agent, seconds=round(time.monotonic() - start, 3), message=message)

    def _invoke(self, chain: _Chain, name: str, task_json: str, parent: _Frame | None) -> tuple[Outcome, Failure | None]:
        """Run agent `name` once; return its outcome and, if it failed, the failure where that started."""
        spec = self.project.agents[name]
        frame = _Frame(agent=name, span_id=new_span_id(), stack=(*parent.stack, name) if parent else (name,))
        span = {"trace_id": chain.run_id, "span_id": frame.span_id, "parent_span_id": parent and parent.span_id}
        self.events.emit("agent.start", "debug", agent=name, depth=frame.depth, **span)
        config_json = (
            f'{{"task": {task_json}, "agent": {json.dumps(name)}, "run_id": {json.dumps(chain.run_id)}, '
            f'"settings": {json.dumps(spec.settings)}}}'
        )
        budget = EventBudget(spec.limits.output_bytes)  # what the guest's logs, output and refusals may emit
        invocation = Invocation(
            spec.limits,
            host_call=lambda call, payload: self._host_call(chain, frame, budget, call, payload),
            on_log=lambda level, fields: self._guest_log(name, span, budget, level, fields),
            on_output=lambda stream, text: self.events.emit(f"agent.{stream}", "info", budget=budget, agent=name, text=text, **span),
            guests=self.guests,
            caller=parent and parent.invocation,
        )
        frame.invocation = invocation
        outcome = invoke(partial(self._pool.take, name), invocation, config_json, parent.deadline if parent else chain.deadline)
        outcome = replace(outcome, error=readable_failure(outcome.error, self.dist, name))  # the user's paths and lines
        hop = Hop(
            agent=name,
            span_id=frame.span_id,
            parent_span_id=parent and parent.span_id,
            depth=frame.depth,
            duration_ms=outcome.duration_ms,
            outcome="ok" if outcome.ok else "error",
            error_type=outcome.error and str(outcome.error.type),
            fuel_used=outcome.fuel_used,
        )
        with chain.lock:
            chain.hops.append(hop)
        if budget.dropped:
            self.events.emit(
                "agent.events.dropped", "warning", agent=name, **span, dropped=budget.dropped, dropped_bytes=budget.dropped_bytes,
                message=f"events past the agent's budget of {budget.limit} bytes ([limits] output_bytes) were dropped",
            )
        fields: dict[str, Any] = {"duration_ms": outcome.duration_ms, "outcome": hop.outcome, "fuel_used": outcome.fuel_used}
        if outcome.error:
            fields.update({
                "exception.type": str(outcome.error.type),
                "exception.message": outcome.error.message,
                "exception.stacktrace": outcome.error.traceback or None,
                "exception.hint": limit_hint(str(outcome.error.type), outcome.error.message, spec.folder),
            })
        self.events.emit("agent.end", "info" if outcome.ok else "error", agent=name, **span, **fields)
        if outcome.abandoned:
            self.events.emit(
                "sandbox.abandoned", "warning", agent=name, lingering=self.guests.lingering, **span,
                message="the guest is blocked in a WASI call past its deadline: its thread and memory stay until the call returns",
            )
        return outcome, _origin(frame, outcome)

    def _host_call(self, chain: _Chain, frame: _Frame, budget: EventBudget, call: str, payload: str) -> tuple[bool, str]:
        limits = self.project.agents[frame.agent].limits
        if call == "http":
            return self._http(chain, frame, budget, payload)
        if call != "delegate":
            return False, _refusal(Failure(ErrorKind.UNKNOWN_CALL, f"agent '{frame.agent}' made an unknown host call {call[:100]!r}"))
        if (size := utf8_size(payload)) > limits.payload_limit:  # before anything is built from it
            message = f"delegation payload of {size} bytes exceeds {limits.payload_limit}"
            return False, _refusal(Failure(ErrorKind.PAYLOAD_TOO_LARGE, message))
        to = None  # not known until the request is read
        try:
            check_time(self.project, frame.agent, _budget(chain, frame))  # a caller out of time: its request is not even read
            try:
                request = guest_json.loads(payload, max_bytes=limits.payload_limit, max_depth=limits.json_depth, max_items=limits.json_items)
                task, to = request["task"], request.get("to")
                if to is not None and not isinstance(to, str):
                    raise TypeError("'to' must be an agent name")
            except (ValueError, KeyError, TypeError) as error:
                hint = error.hint("payload_bytes") if isinstance(error, guest_json.Refused) else ""
                return False, _refusal(Failure(ErrorKind.BAD_REQUEST, f"agent '{frame.agent}' sent a malformed delegation: {error}{hint}"))
            target = route(self.project, frame.stack, to, _budget(chain, frame))
        except Refusal as refusal:
            self.events.emit(
                "delegation.refused", "warning", budget=budget, agent=frame.agent, target=to and shown(to), reason=str(refusal.kind),
                message=str(refusal), trace_id=chain.run_id, span_id=frame.span_id,
            )
            frame.failed_delegations.append(refusal.failure(frame.agent))
            return False, _refusal(refusal.failure())
        outcome, origin = self._invoke(chain, target, json.dumps(task), frame)
        if outcome.ok:
            return True, outcome.result_json
        frame.failed_delegations.append(origin)
        return False, _refusal(Failure(outcome.error.type, outcome.error.message, outcome.error.traceback, agent=target))

    def _http(self, chain: _Chain, frame: _Frame, budget: EventBudget, payload: str) -> tuple[bool, str]:
        """Make one HTTP request for the agent, if its allow list lets it; the answer or the refusal goes back to it."""
        # Imported at the first request: ssl and http.client would add ~10 ms to the start of every run.
        from wasm_agents.network.exchange import Egress, NetworkError, read_request

        spec = self.project.agents[frame.agent]
        if frame.egress is None:
            frame.egress = Egress(spec.name, spec.folder, spec.network)
        span = {"trace_id": chain.run_id, "span_id": frame.span_id}
        start = time.monotonic()
        request = None
        try:
            request = read_request(payload, spec.limits)
            response = frame.egress.fetch(request, frame.deadline)
        except NetworkError as error:
            where = {} if request is None else _http_fields(request)
            self.events.emit(
                "http.refused", "warning", budget=budget, agent=frame.agent, **span, **where, reason=error.reason, message=str(error),
            )
            return False, json.dumps({**Failure(error.kind, str(error)).to_json(), "reason": error.reason})
        self.events.emit(
            "http.request", "info", agent=frame.agent, **span, **_http_fields(request), status=response.status,
            request_bytes=len(request.body), response_bytes=len(response.body), duration_ms=ms_since(start),
        )
        return True, response.to_wire()

    def _guest_log(self, agent: str, span: dict[str, Any], budget: EventBudget, level: str, fields: dict[str, Any]) -> None:
        level = level if level in LOG_LEVELS else "info"
        message = fields.pop("message", "")
        self.events.emit("agent.log", level, budget=budget, agent=agent, body=str(message), attributes=fields or None, **span)


def _http_fields(request: "Request") -> dict[str, Any]:
    """What events say of a request: never its query, which may carry keys."""
    target = request.target
    return {"method": request.method, "scheme": target.scheme, "host": target.host, "port": target.port, "path": target.path.split("?")[0]}


def _budget(chain: _Chain, frame: _Frame) -> Budget:
    """What the chain has used, now, when `frame`'s agent asks to delegate."""
    with chain.lock:
        hops_started = len(chain.hops) + len(frame.stack)
    return Budget(hops_started, time.monotonic(), chain.deadline, frame.deadline)


def _origin(frame: _Frame, outcome: Outcome) -> Failure | None:
    """Where a failed invocation's failure started, from host facts: its own error, or the delegation failure it passed on.

    An agent's error counts as passed on only when it is the SDK's DelegationError and a delegation of this
    agent did fail: a guest cannot shift the blame by naming its own exception DelegationError.
    """
    if outcome.ok:
        return None
    if outcome.error.type == ErrorKind.DELEGATION_ERROR and frame.failed_delegations:
        return frame.failed_delegations[-1]
    return Failure(outcome.error.type, outcome.error.message, outcome.error.traceback, agent=frame.agent)


def _refusal(failure: Failure) -> str:
    """Encode a failed host call's answer for the guest."""
    return json.dumps(failure.to_json())
