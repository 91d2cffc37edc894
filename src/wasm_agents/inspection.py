"""What a dist holds, for people and tools: agents, chain, dependencies, sizes, hashes, tool versions, signer."""

import re
from pathlib import Path
from typing import Any

from wasm_agents.artifacts import TrustPolicy, verify_dist
from wasm_agents.artifacts.layout import DEPS_ARTIFACT
from wasm_agents.project import SCIENTIFIC_RUNTIME

DIST_INFO = re.compile(r"^(?P<agent>[^/]+)/(?P<name>[^/]+?)-(?P<version>[^-/]+)\.dist-info/METADATA$")


def describe(path: Path, trust: TrustPolicy | None = None) -> dict[str, Any]:
    """Verify the dist at `path` (under `trust`, if given), then return a JSON-able description of it."""
    dist = verify_dist(path, trust)
    dependencies: dict[str, list[dict[str, str]]] = {}
    for entry in dist.listing(DEPS_ARTIFACT).files:
        if match := DIST_INFO.match(entry.path):
            dependencies.setdefault(match["agent"], []).append({"name": match["name"], "version": match["version"]})
    project = dist.project.to_json()
    agents = {}
    for name, agent in project["agents"].items():
        code = dist.agent_code(name)
        agents[name] = {
            **agent,
            "dependencies": sorted(dependencies.get(name, []), key=lambda d: d["name"].lower()),
            # a component, or on the scientific runtime the memory image its instances start from
            "image" if agent.get("runtime") == SCIENTIFIC_RUNTIME else "component": {"path": code.path, "size": code.size, "sha256": code.sha256},
        }
    return {
        "dist": str(path),
        "chain": project["chain"],
        "agents": agents,
        "tools": dist.manifest.tools,
        "files": {name: {"size": entry.size, "sha256": entry.sha256} for name, entry in sorted(dist.manifest.files.items())},
        "signature": dist.signed_by and {"key_id": dist.signed_by, "checked": dist.signature_checked},
    }
