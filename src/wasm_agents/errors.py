"""The error vocabulary: errors a user meets (one line, one exit code each), and why an agent or a chain failed."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_AGENT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


class WasmAgentsError(Exception):
    """A failure caused by the user's input, reported as one line."""

    exit_code = EXIT_BAD_INPUT


class ProjectError(WasmAgentsError):
    """The agent folders or their configuration are invalid."""


class VendorError(WasmAgentsError):
    """A requirement cannot be resolved, downloaded or installed for the sandbox."""


class BuildError(WasmAgentsError):
    """A build step other than vendoring failed."""


class VerificationError(WasmAgentsError):
    """Artifacts do not match their manifests; nothing from them may run."""

    exit_code = EXIT_REFUSED

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{problems[0]} (and {len(problems) - 1} more)")


class ErrorKind(StrEnum):
    """The error types wasm-agents itself reports in results and events; any other type is a guest exception's name.

    A limit is named by what ran out, in lowercase; everything else is CamelCase, like Python's exceptions.
    """

    # An agent went past one of its limits.
    TIMEOUT = "timeout"
    MEMORY = "memory"
    FUEL = "fuel"
    OUTPUT = "output"
    STACK = "stack"
    SCRATCH = "scratch"
    # The sandbox ended in another way than a result or a Python exception.
    EXIT = "Exit"
    TRAP = "Trap"
    PROTOCOL_ERROR = "ProtocolError"
    HOST_ERROR = "HostError"
    RESERVED_ERROR_NAME = "ReservedErrorName"
    NOT_SERIALIZABLE = "NotSerializable"
    # The orchestrator refused a host call or a delegation.
    UNKNOWN_CALL = "UnknownCall"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"
    BAD_REQUEST = "BadRequest"
    END_OF_CHAIN = "EndOfChain"
    UNKNOWN_AGENT = "UnknownAgent"
    FORBIDDEN = "Forbidden"
    CYCLE = "Cycle"
    DEPTH_EXCEEDED = "DepthExceeded"
    HOP_BUDGET_EXCEEDED = "HopBudgetExceeded"
    # The host refused an agent's HTTP request, or could not complete it; the agent gets it as its library's error.
    NETWORK_REFUSED = "NetworkRefused"
    NETWORK_TIMEOUT = "NetworkTimeout"
    NETWORK_FAILED = "NetworkFailed"
    # A backend lost the process running a chain.
    WORKER_LOST = "WorkerLost"
    # The SDK's exception for a delegation that was refused or failed further down the chain.
    DELEGATION_ERROR = "DelegationError"


# The kinds that say an agent went past one of its limits.
LIMITS = frozenset({ErrorKind.TIMEOUT, ErrorKind.MEMORY, ErrorKind.FUEL, ErrorKind.OUTPUT, ErrorKind.STACK, ErrorKind.SCRATCH})
# What a guest may report itself: the harness reports a result that is not JSON, the SDK a failed delegation.
GUEST_REPORTED = frozenset({ErrorKind.NOT_SERIALIZABLE, ErrorKind.DELEGATION_ERROR})
# Only the host may report these; a guest exception with one of these names is renamed.
HOST_ONLY = frozenset(ErrorKind) - GUEST_REPORTED


@dataclass(frozen=True)
class Failure:
    """Why an invocation or a chain failed: its type (an ErrorKind or a guest exception's name), message, traceback, agent."""

    type: str
    message: str
    traceback: str = ""
    agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the JSON object of results, refusals and events; empty fields are left out."""
        fields = {"type": str(self.type), "message": self.message, "traceback": self.traceback, "agent": self.agent}
        return {key: value for key, value in fields.items() if value}
