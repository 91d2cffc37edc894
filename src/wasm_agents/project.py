"""The project model: agents, their limits and permissions, and the chain policy.

Build derives it from agent folders (see `builder.discover`); run reads it back from `manifest.json`.
Both directions validate strictly with the schemas below, since at run time the JSON comes from an artifact.
"""

import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from wasm_agents.errors import ProjectError
from wasm_agents.network.allow import parse_rule

ROOT_AGENT = "agent"
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")  # \Z: "$" would let a trailing newline through

MIB = 1024 * 1024
MAX_MEMORY_MB = 4096  # wasm32 linear memory cannot exceed 4 GiB
MAX_WALL_TIME_S = 24 * 3600.0
DEFAULT_JSON_BYTES = 16 * MIB
DEFAULT_JSON_DEPTH = 100
DEFAULT_SCRATCH_MB = 64
DEFAULT_JSON_ITEMS = 250_000  # decoding holds the GIL ~0.25 s per million values: this bounds it to ~60 ms
MAX_JSON_BYTES = 1 << 30

# The interpreters an agent can run on: componentize-py's CPython 3.14 component, or CPython 3.15 with numpy, pandas
# and scipy built in (wasm_agents.scientific). An agent whose requirements name one of SCIENTIFIC_PACKAGES gets the latter.
DEFAULT_RUNTIME, SCIENTIFIC_RUNTIME = "default", "scientific"
SCIENTIFIC_PACKAGES = frozenset({"numpy", "pandas", "scipy", "scikit-learn", "statsmodels", "matplotlib"})
Runtime = Annotated[
    Literal["default", "scientific"], msgspec.Meta(description=f"{DEFAULT_RUNTIME!r} or {SCIENTIFIC_RUNTIME!r}")
]

_T = TypeVar("_T")

# The schema types below carry a description: what a problem says was expected (see `convert`).


def integer_from(low: int, high: int) -> Any:
    """Return the schema type of an integer from `low` to `high`."""
    return Annotated[int, msgspec.Meta(ge=low, le=high, description=f"an integer from {low} to {high}")]


def exactly(value: str) -> Any:
    """Return the schema type of the string `value` and no other."""
    return Annotated[Literal[value], msgspec.Meta(description=repr(value))]


_NonEmpty = Annotated[str, msgspec.Meta(min_length=1, description="a non-empty string")]
_Seconds = Annotated[float, msgspec.Meta(gt=0, le=MAX_WALL_TIME_S, description=f"a number of seconds more than 0 and at most {MAX_WALL_TIME_S:g}")]
_AgentName = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN.pattern, description="an agent name (lowercase letters, digits and single dashes)")]
Names = Annotated[tuple[_AgentName, ...], msgspec.Meta(description="a list of agent names")]
ScratchMb = integer_from(1, 1 << 20)


class Schema(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A document or a table of one, read with `convert`: unknown keys are refused."""


class Limits(Schema):
    """What one invocation of an agent may consume before it is stopped: [limits] of agent.toml, "limits" in manifest.json.

    The JSON an agent returns (result_bytes) and sends in one delegation (payload_bytes) is refused past its size
    before the host decodes it; unset, each is an eighth of memory_mb, at most 16 MiB. Its values are counted
    before decoding too (json_items), which bounds the host's objects (~80 bytes a value) and time.
    """

    memory_mb: integer_from(1, MAX_MEMORY_MB) = 256
    wall_time_s: _Seconds = 30.0
    fuel: integer_from(1, 2**63 - 1) | None = None
    output_bytes: integer_from(0, 2**40) = MIB
    result_bytes: integer_from(1, MAX_JSON_BYTES) | None = None
    payload_bytes: integer_from(1, MAX_JSON_BYTES) | None = None
    json_depth: integer_from(1, 500) = DEFAULT_JSON_DEPTH  # arrays and objects within each other, in results and payloads
    json_items: integer_from(1, 100_000_000) = DEFAULT_JSON_ITEMS  # values in one result, payload or log record

    @property
    def result_limit(self) -> int:
        """The most bytes of JSON a result may have."""
        return self.result_bytes or min(self.memory_mb * MIB // 8, DEFAULT_JSON_BYTES)

    @property
    def payload_limit(self) -> int:
        """The most bytes of JSON one delegation request may have."""
        return self.payload_bytes or min(self.memory_mb * MIB // 8, DEFAULT_JSON_BYTES)


_AllowEntry = Annotated[str, msgspec.Meta(min_length=1, max_length=300, description="a host[:port] entry")]


class Network(Schema):
    """The hosts an agent may reach over HTTP and HTTPS, through the host: [network] of agent.toml, "network" in manifest.json.

    No [network] section: no network at all. Without a port, an entry allows the scheme's default one.
    """

    allow: Annotated[tuple[_AllowEntry, ...], msgspec.Meta(description="a list of host[:port] entries")]
    max_requests: integer_from(1, 1_000_000) = 100  # per invocation
    max_response_bytes: integer_from(1, MAX_JSON_BYTES // 2) = 10 * MIB  # per response, as it comes off the wire
    timeout_s: _Seconds = 10.0  # per request, and never past the invocation's own deadline

    def __post_init__(self) -> None:
        for index, entry in enumerate(self.allow):
            try:
                parse_rule(entry)
            except ValueError as error:
                raise ValueError(f"allow: {entry!r}: {error}") from None


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
    scratch_mb: int = DEFAULT_SCRATCH_MB  # what /scratch may hold, files and folders counted
    network: Network | None = None  # None: no network
    runtime: str = DEFAULT_RUNTIME


class ChainPolicy(Schema):
    """How delegations may flow through one chain (one task): [chain] of wasm-agents.toml, "chain" in manifest.json."""

    order: Names = ()  # the root first, then the helpers; wasm-agents.toml may name some helpers only
    max_depth: integer_from(1, 1000) = 8
    max_hops: integer_from(1, 1_000_000) = 64
    wall_time_s: _Seconds = 120.0


class _AgentJson(Schema):
    """One agent of the project in manifest.json, under its name."""

    folder: _NonEmpty
    limits: Limits
    may_delegate_to: Names | None = None
    data_dir: _NonEmpty | None = None
    scratch: bool = False
    settings: dict[str, Any] = {}
    scratch_mb: ScratchMb = DEFAULT_SCRATCH_MB
    network: Network | None = None
    runtime: Runtime = DEFAULT_RUNTIME


class _ProjectJson(Schema):
    """The project in manifest.json."""

    agents: dict[str, Any]  # each read on its own: the problems of a dict's values would not name their key
    chain: ChainPolicy


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
    def from_json(cls, data: Any, source: str = "manifest.json") -> "Project":
        """Read the JSON form back from "project" in `source`, refusing anything malformed."""
        project = convert(data, _ProjectJson, source, "project")
        agents = {}
        for name, value in project.agents.items():
            key = f"project.agents.{name}"
            check_name(name, f"{source}: {key}")
            agents[name] = AgentSpec(name, **msgspec.structs.asdict(convert(value, _AgentJson, source, key)))
        return build_project(agents, project.chain, f"{source}: project")


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
    for optional in ("fuel", "result_bytes", "payload_bytes"):
        if (value := getattr(spec.limits, optional)) is not None:
            data["limits"][optional] = value
    for name, default in (("json_depth", DEFAULT_JSON_DEPTH), ("json_items", DEFAULT_JSON_ITEMS)):
        if (value := getattr(spec.limits, name)) != default:
            data["limits"][name] = value
    if spec.scratch_mb != DEFAULT_SCRATCH_MB:
        data["scratch_mb"] = spec.scratch_mb
    if spec.network is not None:
        data["network"] = msgspec.to_builtins(spec.network)
    if spec.runtime != DEFAULT_RUNTIME:
        data["runtime"] = spec.runtime
    if spec.may_delegate_to is not None:
        data["may_delegate_to"] = list(spec.may_delegate_to)
    if spec.data_dir is not None:
        data["data_dir"] = spec.data_dir
    return data


def convert(data: Any, schema: type[_T], source: str, key: str = "", error: Callable[[str], Exception] = ProjectError) -> _T:
    """Return `data` (parsed JSON or TOML at `key` of `source`) as a `schema`, strictly: no coercion, no unknown keys.

    Else raise `error` with one line naming `source`, the key and the offending value, and what was expected: the
    description of the key's type if it has one, else msgspec's words.
    """
    # In a 1-tuple every problem has a path, and msgspec's words end with it: a key that reads like a path cannot fool rpartition.
    try:
        return msgspec.convert((data,), tuple[schema], strict=True)[0]
    except msgspec.ValidationError as e:
        reason, _, path = str(e).rpartition(" - at `$")
    path = path.removesuffix("`")
    value, hint = (data,), tuple[schema]
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path):
        inner = _unwrap(hint)[0]
        value, hint = value[name or int(index)], get_type_hints(inner, include_extras=True)[name] if name else get_args(inner)[0]
    hint, description = _unwrap(hint)
    if found := re.fullmatch(r"Object contains unknown field `(.*)`", reason, re.DOTALL):
        allowed = ", ".join(sorted(item.name for item in msgspec.structs.fields(hint)))
        problem = f"unknown key {reprlib.repr(found[1])} (allowed: {allowed})"
    elif found := re.fullmatch(r"Object missing required field `(.*)`", reason):
        problem = f"missing key {found[1]!r}"
    elif isinstance(value, dict) and isinstance(hint, type) and issubclass(hint, Schema):  # the table's own check (__post_init__)
        problem = reason
    else:
        expected = f"expected {description}" if description else re.sub(r", got `[^`]*`$", "", reason[0].lower() + reason[1:])
        words = {**_TYPE_WORDS, "object": "a table" if source.endswith(".toml") else "an object"}
        expected = re.sub(r"`(\w+)`", lambda word: words.get(word[1], word[1]), expected)
        problem = f"{expected}, got {reprlib.repr(value)}"
    where = ": ".join(part for part in (source, f"{key}{path.removeprefix('[0]')}".lstrip(".")) if part)
    raise error(f"{where}: {problem}" if where else problem)


# msgspec's names of JSON types, as the problems say them.
_TYPE_WORDS = {"array": "a list", "str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def _unwrap(hint: Any) -> tuple[Any, str | None]:
    """Return the type that `hint` annotates, without `| None`, and its description."""
    if get_origin(hint) in (Union, UnionType):
        hint = get_args(hint)[0]
    if get_origin(hint) is Annotated:
        return hint.__origin__, hint.__metadata__[0].description
    return hint, None
