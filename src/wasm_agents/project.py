"""The project model: agents, their limits and permissions, and the chain policy.

Build derives it from agent folders (see `builder.discover`); run reads it back from `manifest.json`.
Both directions validate strictly, since at run time the JSON comes from an artifact.
"""

import math
import re
from dataclasses import dataclass, field
from typing import Any

from wasm_agents.errors import ProjectError

ROOT_AGENT = "agent"
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

MIB = 1024 * 1024
MAX_MEMORY_MB = 4096  # wasm32 linear memory cannot exceed 4 GiB
MAX_WALL_TIME_S = 24 * 3600.0


@dataclass(frozen=True)
class Limits:
    """What one invocation of an agent may consume before it is stopped."""

    memory_mb: int = 256
    wall_time_s: float = 30.0
    fuel: int | None = None
    output_bytes: int = MIB


@dataclass(frozen=True)
class AgentSpec:
    """One agent: its name, folder, limits, delegation rights and settings."""

    name: str
    folder: str
    limits: Limits = Limits()
    may_delegate_to: tuple[str, ...] | None = None  # None: any agent of the project
    data_dir: str | None = None  # relative to the agent folder; mounted read-only at /data
    scratch: bool = False  # a private, writable /scratch, fresh for every invocation
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainPolicy:
    """How delegations may flow through one chain (one task)."""

    order: tuple[str, ...]  # the root first, then the helpers
    max_depth: int = 8
    max_hops: int = 64
    wall_time_s: float = 120.0


@dataclass(frozen=True)
class Project:
    """Every agent of a project and the policy of its chains."""

    agents: dict[str, AgentSpec]
    policy: ChainPolicy

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form stored under "project" in manifest.json."""
        return {
            "agents": {name: _agent_to_json(spec) for name, spec in sorted(self.agents.items())},
            "chain": {
                "order": list(self.policy.order),
                "max_depth": self.policy.max_depth,
                "max_hops": self.policy.max_hops,
                "wall_time_s": self.policy.wall_time_s,
            },
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "manifest.json: project") -> "Project":
        """Read the JSON form back, refusing anything malformed."""
        table = _table(data, where, {"agents", "chain"}, required={"agents", "chain"})
        agents_table = _table(table["agents"], f"{where}.agents", None)
        agents = {}
        for name, agent_data in agents_table.items():
            spec_where = f"{where}.agents.{name}"
            spec_table = _table(
                agent_data,
                spec_where,
                {"folder", "limits", "may_delegate_to", "data_dir", "scratch", "settings"},
                required={"folder", "limits"},
            )
            spec = AgentSpec(
                name=check_name(name, spec_where),
                folder=_string(spec_table["folder"], f"{spec_where}.folder"),
                limits=limits_from_table(spec_table["limits"], f"{spec_where}.limits"),
                may_delegate_to=_optional_names(spec_table.get("may_delegate_to"), f"{spec_where}.may_delegate_to"),
                data_dir=_optional_string(spec_table.get("data_dir"), f"{spec_where}.data_dir"),
                scratch=_bool(spec_table.get("scratch", False), f"{spec_where}.scratch"),
                settings=_table(spec_table.get("settings", {}), f"{spec_where}.settings", None),
            )
            agents[spec.name] = spec
        policy = policy_from_table(table["chain"], f"{where}.chain", require_order=True)
        return build_project(agents, policy, where)


def build_project(agents: dict[str, AgentSpec], policy: ChainPolicy, where: str) -> Project:
    """Check that names referenced by the policy and the agents exist, then return the project."""
    if ROOT_AGENT not in agents:
        raise ProjectError(f"{where}: no root agent '{ROOT_AGENT}'")
    if sorted(policy.order) != sorted(agents) or policy.order[0] != ROOT_AGENT:
        raise ProjectError(f"{where}: chain order {list(policy.order)} must list every agent once, root first")
    for spec in agents.values():
        for target in spec.may_delegate_to or ():
            if target not in agents:
                raise ProjectError(f"{where}: agent '{spec.name}' may_delegate_to unknown agent '{target}'")
    return Project(agents=agents, policy=policy)


def limits_from_table(data: Any, where: str) -> Limits:
    """Read a [limits] table, filling defaults."""
    table = _table(data, where, {"memory_mb", "wall_time_s", "fuel", "output_bytes"})
    defaults = Limits()
    memory_mb = _int(table.get("memory_mb", defaults.memory_mb), f"{where}.memory_mb", 1, MAX_MEMORY_MB)
    wall_time_s = _seconds(table.get("wall_time_s", defaults.wall_time_s), f"{where}.wall_time_s")
    fuel = table.get("fuel")
    if fuel is not None:
        fuel = _int(fuel, f"{where}.fuel", 1, 2**63 - 1)
    output_bytes = _int(table.get("output_bytes", defaults.output_bytes), f"{where}.output_bytes", 0, 2**40)
    return Limits(memory_mb=memory_mb, wall_time_s=wall_time_s, fuel=fuel, output_bytes=output_bytes)


def policy_from_table(data: Any, where: str, *, require_order: bool, default_order: tuple[str, ...] = ()) -> ChainPolicy:
    """Read a [chain] table, filling defaults."""
    table = _table(data, where, {"order", "max_depth", "max_hops", "wall_time_s"}, required={"order"} if require_order else set())
    defaults = ChainPolicy(order=())
    order = _optional_names(table.get("order"), f"{where}.order")
    if order is None:
        order = default_order
    if len(set(order)) != len(order):
        raise ProjectError(f"{where}.order: lists an agent twice")
    return ChainPolicy(
        order=order,
        max_depth=_int(table.get("max_depth", defaults.max_depth), f"{where}.max_depth", 1, 1000),
        max_hops=_int(table.get("max_hops", defaults.max_hops), f"{where}.max_hops", 1, 1_000_000),
        wall_time_s=_seconds(table.get("wall_time_s", defaults.wall_time_s), f"{where}.wall_time_s"),
    )


def check_name(name: Any, where: str) -> str:
    """Return `name` if it is a valid agent name."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ProjectError(f"{where}: invalid agent name {name!r} (lowercase letters, digits and single dashes)")
    return name


def _agent_to_json(spec: AgentSpec) -> dict[str, Any]:
    data: dict[str, Any] = {
        "folder": spec.folder,
        "limits": {
            "memory_mb": spec.limits.memory_mb,
            "wall_time_s": spec.limits.wall_time_s,
            "output_bytes": spec.limits.output_bytes,
        },
        "scratch": spec.scratch,
        "settings": spec.settings,
    }
    if spec.limits.fuel is not None:
        data["limits"]["fuel"] = spec.limits.fuel
    if spec.may_delegate_to is not None:
        data["may_delegate_to"] = list(spec.may_delegate_to)
    if spec.data_dir is not None:
        data["data_dir"] = spec.data_dir
    return data


def _table(data: Any, where: str, allowed: set[str] | None, required: set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProjectError(f"{where}: must be a table")
    if allowed is not None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ProjectError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(data))
    if missing:
        raise ProjectError(f"{where}: missing key '{missing[0]}'")
    return data


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProjectError(f"{where}: must be an integer from {low} to {high}, got {value!r}")
    return value


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProjectError(f"{where}: must be a number of seconds, got {value!r}")
    if not 0 < value <= MAX_WALL_TIME_S:
        raise ProjectError(f"{where}: must be more than 0 and at most {MAX_WALL_TIME_S:g} seconds, got {value!r}")
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ProjectError(f"{where}: must be true or false, got {value!r}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProjectError(f"{where}: must be a non-empty string, got {value!r}")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _optional_names(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ProjectError(f"{where}: must be a list of agent names, got {value!r}")
    return tuple(check_name(item, where) for item in value)
