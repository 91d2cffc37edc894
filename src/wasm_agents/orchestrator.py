"""The orchestrator: verify a dist once, then run chains of its agents, routing every delegation by policy."""

import json
import shutil
import tempfile
import threading
import time
from functools import partial
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wasmtime.component import Component

from wasm_agents.artifacts import (
    CODE_ARTIFACT,
    DEPS_ARTIFACT,
    RUNTIME_ARTIFACT,
    RUNTIME_SANDBOX,
    RUNTIME_STDLIB,
    component_path,
    unpacked,
    verify_dist,
)
from wasm_agents.errors import VerificationError
from wasm_agents.events import Events, new_span_id, new_trace_id
from wasm_agents.project import AgentSpec, Project
from wasm_agents.sandbox import CODE_MOUNT, DATA_MOUNT, DEPS_MOUNT, SANDBOX_MOUNT, STDLIB_MOUNT
from wasm_agents.sandbox.compile_cache import load_component
from wasm_agents.sandbox.engine import engines
from wasm_agents.sandbox.invocation import TIMEOUT, Invocation, Outcome, invoke, lingering_guests
from wasm_agents.sandbox.pool import Mounts, WarmPool, prepare
from wasm_agents.signing import TrustPolicy

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
DELEGATION_ERROR = "DelegationError"  # the SDK's exception: a failure that came from further down the chain


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
    """The answer of one chain: its result or error, and a figure per hop."""

    run_id: str
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    hops: list[Hop] = field(default_factory=list)

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


@dataclass(frozen=True)
class _Frame:
    agent: str
    span_id: str
    depth: int
    stack: tuple[str, ...]
    deadline: float


class _Chain:
    def __init__(self, run_id: str, deadline: float) -> None:
        self.run_id = run_id
        self.deadline = deadline
        self.hops: list[Hop] = []
        self.first_failure: dict[str, Any] | None = None
        self.lock = threading.Lock()


class PolicyRefusal(Exception):
    """A delegation the chain's policy does not allow."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


class Runner:
    """Run tasks through the agent chain of one verified dist: `Runner(dist).run(task)`."""

    def __init__(self, dist: Path, events: Events | None = None, *, warm: int = 2, trust: TrustPolicy | None = None) -> None:
        self.dist = Path(dist)
        self.events = events or Events(None)
        # Before anything from the dist is compiled or run; with `trust`, only a dist signed by a trusted key passes.
        # The archives' members are checked as they are unpacked (once per host: see artifacts.unpacked).
        manifest = verify_dist(self.dist, trust, members=False)
        self._trees = {archive: unpacked(self.dist, manifest, archive) for archive in (CODE_ARTIFACT, DEPS_ARTIFACT, RUNTIME_ARTIFACT)}
        self.project = Project.from_json(manifest.project)
        self.tools = manifest.tools
        self._engines = engines()
        self._components: dict[str, Component] = {}
        for name, spec in self.project.agents.items():
            relative = component_path(name)
            if relative not in manifest.files:
                raise VerificationError([f"{relative}: missing from manifest.json"])
            fuel = spec.limits.fuel is not None
            self._components[name] = load_component(
                self._engines.engine(fuel), self.dist / relative, manifest.files[relative].sha256, fuel
            )
        self._empty = Path(tempfile.mkdtemp(prefix="wasm-agents-empty-"))  # mounted where a folder has no files
        # `warm` fresh sandboxes per agent are made ahead of demand; each still serves one invocation only.
        self._pool = WarmPool(warm)
        for name, spec in self.project.agents.items():
            self._pool.add(name, partial(prepare, self._engines, self._components[name], spec.limits, self._mounts_for(spec)))

    def run(self, task: Any, *, run_id: str | None = None) -> ChainResult:
        """Run one task through the chain, starting at the root agent."""
        start = time.monotonic()
        chain = _Chain(run_id or new_trace_id(), start + self.project.policy.wall_time_s)
        self.events.emit("chain.start", "debug", trace_id=chain.run_id)
        root = self.project.policy.order[0]
        outcome = self._invoke(chain, root, json.dumps(task), None)
        for hop in chain.hops:  # refill once the chain is done, so making sandboxes never slows its hops
            self._pool.refill(hop.agent)
        result = ChainResult(run_id=chain.run_id, ok=outcome.ok, hops=chain.hops)
        if outcome.ok:
            try:
                result.result = json.loads(outcome.result_json)
            except RecursionError:
                result.ok = False
                result.error = {"type": "NotSerializable", "message": "result nested too deeply to decode", "agent": root}
        else:
            result.error = self._chain_error(chain, root, outcome)
        result.duration_ms = round((time.monotonic() - start) * 1000, 3)
        self.events.emit(
            "chain.end",
            "info" if result.ok else "error",
            trace_id=chain.run_id,
            duration_ms=result.duration_ms,
            outcome="ok" if result.ok else "error",
            hops=len(chain.hops),
            **({} if result.ok else {"error.type": result.error["type"], "error.agent": result.error["agent"]}),
        )
        return result

    def close(self) -> None:
        """Drop the sandboxes made ahead of demand."""
        self._pool.close()
        shutil.rmtree(self._empty, ignore_errors=True)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _invoke(self, chain: _Chain, name: str, task_json: str, parent: _Frame | None) -> Outcome:
        spec = self.project.agents[name]
        now = time.monotonic()
        deadline = min(now + spec.limits.wall_time_s, chain.deadline, parent.deadline if parent else chain.deadline)
        frame = _Frame(
            agent=name,
            span_id=new_span_id(),
            depth=parent.depth + 1 if parent else 0,
            stack=(*parent.stack, name) if parent else (name,),
            deadline=deadline,
        )
        span = {"trace_id": chain.run_id, "span_id": frame.span_id, "parent_span_id": parent and parent.span_id}
        self.events.emit("agent.start", "debug", agent=name, depth=frame.depth, **span)
        config_json = (
            f'{{"task": {task_json}, "agent": {json.dumps(name)}, "run_id": {json.dumps(chain.run_id)}, '
            f'"settings": {json.dumps(spec.settings)}}}'
        )
        invocation = Invocation(
            spec.limits,
            host_call=lambda call, payload: self._host_call(chain, frame, call, payload),
            on_log=lambda level, fields: self._guest_log(name, span, level, fields),
            on_output=lambda stream, text: self.events.emit(f"agent.{stream}", "info", agent=name, text=text, **span),
        )
        outcome = invoke(partial(self._pool.take, name), invocation, config_json, deadline)
        hop = Hop(
            agent=name,
            span_id=frame.span_id,
            parent_span_id=parent and parent.span_id,
            depth=frame.depth,
            duration_ms=outcome.duration_ms,
            outcome="ok" if outcome.ok else "error",
            error_type=outcome.error and outcome.error["type"],
            fuel_used=outcome.fuel_used,
        )
        with chain.lock:
            chain.hops.append(hop)
            if not outcome.ok and outcome.error["type"] != DELEGATION_ERROR and chain.first_failure is None:
                chain.first_failure = {**outcome.error, "agent": name}
        fields: dict[str, Any] = {"duration_ms": outcome.duration_ms, "outcome": hop.outcome, "fuel_used": outcome.fuel_used}
        if outcome.error:
            fields.update({
                "exception.type": outcome.error["type"],
                "exception.message": outcome.error["message"],
                "exception.stacktrace": outcome.error.get("traceback") or None,
            })
        self.events.emit("agent.end", "info" if outcome.ok else "error", agent=name, **span, **fields)
        if outcome.abandoned:
            self.events.emit(
                "sandbox.abandoned", "warning", agent=name, lingering=lingering_guests(), **span,
                message="the guest is blocked in a WASI call past its deadline: its thread and memory stay until the call returns",
            )
        return outcome

    def _host_call(self, chain: _Chain, frame: _Frame, call: str, payload: str) -> tuple[bool, str]:
        if call != "delegate":
            return False, _refusal("UnknownCall", f"agent '{frame.agent}' made an unknown host call {call[:100]!r}")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return False, _refusal("PayloadTooLarge", f"delegation payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        try:
            request = json.loads(payload)
            task, to = request["task"], request.get("to")
            if to is not None and not isinstance(to, str):
                raise TypeError("'to' must be an agent name")
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            return False, _refusal("BadRequest", f"agent '{frame.agent}' sent a malformed delegation: {error}")
        try:
            target = self._route(chain, frame, to)
        except PolicyRefusal as refusal:
            self.events.emit(
                "delegation.refused", "warning", agent=frame.agent, target=to, reason=refusal.kind,
                message=str(refusal), trace_id=chain.run_id, span_id=frame.span_id,
            )
            with chain.lock:
                if chain.first_failure is None:
                    chain.first_failure = {"type": refusal.kind, "message": str(refusal), "agent": frame.agent}
            return False, _refusal(refusal.kind, str(refusal))
        outcome = self._invoke(chain, target, json.dumps(task), frame)
        if outcome.ok:
            return True, outcome.result_json
        return False, json.dumps({**outcome.error, "agent": target})

    def _route(self, chain: _Chain, frame: _Frame, to: str | None) -> str:
        """Pick the delegation target and apply the policy; raise PolicyRefusal when it is not allowed."""
        policy = self.project.policy
        caller = self.project.agents[frame.agent]
        if to is None:
            position = policy.order.index(frame.agent)
            if position + 1 >= len(policy.order):
                raise PolicyRefusal("EndOfChain", f"agent '{frame.agent}' is the last in the chain: no next agent")
            target = policy.order[position + 1]
        else:
            target = to
        if target not in self.project.agents:
            raise PolicyRefusal("UnknownAgent", f"agent '{frame.agent}' delegated to unknown agent '{target}'")
        if caller.may_delegate_to is not None and target not in caller.may_delegate_to:
            raise PolicyRefusal("Forbidden", f"agent '{frame.agent}' may not delegate to '{target}'")
        if target in frame.stack:
            path = " -> ".join((*frame.stack, target))
            raise PolicyRefusal("Cycle", f"delegation cycle refused: {path}")
        if frame.depth + 1 > policy.max_depth:
            raise PolicyRefusal("DepthExceeded", f"delegation from '{frame.agent}' to '{target}' exceeds max depth {policy.max_depth}")
        if len(chain.hops) + len(frame.stack) >= policy.max_hops:
            raise PolicyRefusal("HopBudgetExceeded", f"chain hop budget of {policy.max_hops} used up at '{frame.agent}' -> '{target}'")
        if time.monotonic() >= chain.deadline:
            raise PolicyRefusal(TIMEOUT, f"chain wall-time budget of {policy.wall_time_s:g} s used up")
        return target

    def _guest_log(self, agent: str, span: dict[str, Any], level: str, fields: dict[str, Any]) -> None:
        level = level if level in ("debug", "info", "warning", "error") else "info"
        message = fields.pop("message", "")
        self.events.emit("agent.log", level, agent=agent, body=str(message), attributes=fields or None, **span)

    def _chain_error(self, chain: _Chain, root: str, outcome: Outcome) -> dict[str, Any]:
        """Report the failure where it started, not where it surfaced."""
        error = {**outcome.error, "agent": root}
        if outcome.error["type"] == DELEGATION_ERROR and chain.first_failure is not None:
            error = dict(chain.first_failure)
        return {key: value for key, value in error.items() if value}

    def _mounts_for(self, spec: AgentSpec) -> Mounts:
        """The folders an agent's fresh instances see, read-only: the paths its snapshot imported from, and /data."""
        runtime, code = self._trees[RUNTIME_ARTIFACT], self._trees[CODE_ARTIFACT] / spec.folder
        folders = {
            STDLIB_MOUNT: runtime / RUNTIME_STDLIB,
            SANDBOX_MOUNT: runtime / RUNTIME_SANDBOX,
            CODE_MOUNT: code,
            DEPS_MOUNT: self._trees[DEPS_ARTIFACT] / spec.name,
        }
        if spec.data_dir is not None:
            folders[DATA_MOUNT] = code / spec.data_dir
        # Archives hold no empty folders: an agent without deps or a data dir without files gets an empty one.
        read_only = tuple((guest, str(host if host.is_dir() else self._empty)) for guest, host in folders.items())
        return Mounts(read_only=read_only, scratch=spec.scratch)


def _refusal(kind: str, message: str) -> str:
    return json.dumps({"type": kind, "message": message})
