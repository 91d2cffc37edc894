"""Errors a user meets: each carries a one-line message and the process exit code it maps to."""

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

