"""The artifacts of a dist: what `build` writes into dist/ and `run` reads back, verified. See layout for its files."""

from wasm_agents.artifacts.signing import TrustPolicy, trust_policy
from wasm_agents.artifacts.verify import AgentFolders, VerifiedDist, verify_dist

__all__ = ["AgentFolders", "TrustPolicy", "VerifiedDist", "trust_policy", "verify_dist"]
