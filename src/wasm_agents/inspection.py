"""What a dist holds, for people and tools: agents, chain, dependencies, sizes, hashes, tool versions, signer."""

import re
from pathlib import Path
from typing import Any

from wasm_agents.artifacts import DEPS_MANIFEST, component_path, load_artifact_manifest, verify_dist
from wasm_agents.signing import TrustPolicy

DIST_INFO = re.compile(r"^(?P<agent>[^/]+)/(?P<name>[^/]+?)-(?P<version>[^-/]+)\.dist-info/METADATA$")


def describe(dist: Path, trust: TrustPolicy | None = None) -> dict[str, Any]:
    """Verify `dist` (under `trust`, if given), then return a JSON-able description of it."""
    manifest = verify_dist(dist, trust)
    deps = load_artifact_manifest(dist, manifest, DEPS_MANIFEST)
    dependencies: dict[str, list[dict[str, str]]] = {}
    for entry in deps.files:
        match = DIST_INFO.match(entry.path)
        if match:
            dependencies.setdefault(match["agent"], []).append({"name": match["name"], "version": match["version"]})
    agents = {}
    for name, agent in manifest.project["agents"].items():
        component = manifest.files[component_path(name)]
        agents[name] = {
            **agent,
            "dependencies": sorted(dependencies.get(name, []), key=lambda d: d["name"].lower()),
            "component": {"path": component.path, "size": component.size, "sha256": component.sha256},
        }
    return {
        "dist": str(dist),
        "chain": manifest.project["chain"],
        "agents": agents,
        "tools": manifest.tools,
        "files": {path: {"size": entry.size, "sha256": entry.sha256} for path, entry in sorted(manifest.files.items())},
        # "checked": whether the signature was verified against trusted keys, not only found well-formed.
        "signature": manifest.signed_by and {"key_id": manifest.signed_by, "checked": trust is not None},
    }
