"""The names of a dist's files: its manifests, archives and components.

Every byte of a dist is covered by a SHA256: manifest.json lists every other file, and
manifest.json.sha256 covers manifest.json. A signed dist also holds manifest.json.sig, a signature
over the bytes of manifest.json that a trust policy checks (see signing). Archives hold regular files
only (no directory members), so the set of members must equal the archive manifest's "files" exactly.
"""

FORMAT = "wasm-agents/1"
MANIFEST = "manifest.json"
MANIFEST_SHA256 = "manifest.json.sha256"
SIGNATURE = "manifest.json.sig"
PROVENANCE = "provenance.json"
CODE_ARTIFACT = "code-artifact.tar.gz"
CODE_MANIFEST = "code-manifest.json"
DEPS_ARTIFACT = "deps-artifact.tar.gz"
DEPS_MANIFEST = "deps-manifest.json"
RUNTIME_ARTIFACT = "runtime-artifact.tar.gz"
RUNTIME_MANIFEST = "runtime-manifest.json"
RUNTIME_STDLIB, RUNTIME_SANDBOX = "python", "sandbox"  # the runtime archive's folders: the guest's stdlib, its sandbox modules
COMPONENTS = "components"

# Each archive of a dist and the manifest listing its members.
ARTIFACTS = {CODE_ARTIFACT: CODE_MANIFEST, DEPS_ARTIFACT: DEPS_MANIFEST, RUNTIME_ARTIFACT: RUNTIME_MANIFEST}


def component_path(agent: str) -> str:
    """Return where the component of `agent` lives, relative to dist/."""
    return f"{COMPONENTS}/{agent}.wasm"
