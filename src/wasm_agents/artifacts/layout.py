"""The names of a dist's files: its manifests, archives, components and images.

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
# The scientific runtime, in a dist with agents that run on it: its core module, its stdlib zip and its guest modules.
SCIENTIFIC_ARTIFACT = "scientific-artifact.tar.gz"
SCIENTIFIC_MANIFEST = "scientific-manifest.json"
SCIENTIFIC_MODULE, SCIENTIFIC_LIB, SCIENTIFIC_GUEST = "python.wasm", "lib", "guest"  # the scientific archive's members and folders
COMPONENTS = "components"
IMAGES = "images"

# Each archive of a dist and the manifest listing its members; the scientific one only where an agent runs on it.
ARTIFACTS = {
    CODE_ARTIFACT: CODE_MANIFEST, DEPS_ARTIFACT: DEPS_MANIFEST, RUNTIME_ARTIFACT: RUNTIME_MANIFEST,
    SCIENTIFIC_ARTIFACT: SCIENTIFIC_MANIFEST,
}  # fmt: skip


def component_path(agent: str) -> str:
    """Return where the component of `agent` lives, relative to dist/."""
    return f"{COMPONENTS}/{agent}.wasm"


def image_path(agent: str) -> str:
    """Return where the memory image of `agent` (an agent of the scientific runtime) lives, relative to dist/."""
    return f"{IMAGES}/{agent}.img"
