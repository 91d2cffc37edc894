"""Verification: every byte of a dist against its manifests, its signature against a trust policy, before anything runs.

`verify_dist` is the only maker of a VerifiedDist, the one object through which `run`, `inspect` and
the backends see a dist: they cannot disagree about what it holds.
"""

import hashlib
import os
import re
import reprlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from wasm_agents.artifacts.files import copy_verified, display, file_kind, open_nofollow, parent_folders, sha256_mismatch, walk
from wasm_agents.artifacts.layout import (
    ARTIFACTS,
    CODE_ARTIFACT,
    DEPS_ARTIFACT,
    MANIFEST,
    MANIFEST_SHA256,
    RUNTIME_ARTIFACT,
    RUNTIME_SANDBOX,
    RUNTIME_STDLIB,
    SCIENTIFIC_ARTIFACT,
    SCIENTIFIC_GUEST,
    SCIENTIFIC_LIB,
    SCIENTIFIC_MODULE,
    SIGNATURE,
    component_path,
    image_path,
)
from wasm_agents.artifacts.model import ArtifactManifest, FileEntry, Manifest
from wasm_agents.artifacts.signing import Signature, TrustPolicy
from wasm_agents.errors import VerificationError
from wasm_agents.paths import cache_dir
from wasm_agents.project import SCIENTIFIC_RUNTIME, Project

MAX_MANIFEST_SIZE = 16 << 20
_SHA256_LINE = re.compile(rb"([0-9a-f]{64})  " + re.escape(MANIFEST.encode()) + rb"\n")


@dataclass(frozen=True)
class AgentFolders:
    """Where the files of one agent's instances are unpacked on this host.

    Archives hold no empty folders: `deps` (and `data`, if the agent declares one) may not exist when they hold no files.
    """

    stdlib: Path
    sandbox: Path
    code: Path
    deps: Path
    data: Path | None
    runtime_guest: Path | None = None  # the scientific runtime's own guest modules, for its agents


@dataclass(frozen=True)
class VerifiedDist:
    """A dist whose every byte matched its manifests, and whose signature satisfied the trust policy if one was given.

    Made only by verify_dist. Its archives are read through `unpacked`, which checks each member as it extracts.
    """

    path: Path
    manifest: Manifest
    signature_checked: bool  # the signature was checked against trusted keys, not only found well-formed

    @property
    def project(self) -> Project:
        """The agents and chain policy the dist was built with."""
        return self.manifest.project

    @property
    def signed_by(self) -> str | None:
        """The key id of the dist's signature, if it has one."""
        return self.manifest.signed_by

    def component(self, agent: str) -> tuple[Path, FileEntry]:
        """Return the file of `agent`'s component and the entry it must match."""
        relative = component_path(agent)
        return self.path / relative, self.manifest.files[relative]

    def listing(self, archive: str) -> ArtifactManifest:
        """Return the member listing of `archive`, read again and refused unless it is the one verified."""
        return load_artifact_manifest(self.path, self.manifest, ARTIFACTS[archive])

    def unpacked(self, archive: str) -> Path:
        """Return a folder holding every member of `archive`.

        The folder lives in this host's cache, named by the SHA256 of the archive and of its listing, and is
        written once, by extract_verified (which checks every member against the listing): a later call for
        the same bytes finds it in place and reads nothing.
        """
        files = self.manifest.files
        key = hashlib.sha256(f"{files[archive].sha256};{files[ARTIFACTS[archive]].sha256}".encode()).hexdigest()
        folder = cache_dir("unpacked") / key
        if not folder.is_dir():
            from wasm_agents.artifacts.archive import extract_verified  # tarfile and gzip: only once per host and dist

            try:
                extract_verified(self.path / archive, self.listing(archive), folder, "")
            except OSError:
                if not folder.is_dir():  # another process extracted the same archive first
                    raise
        return folder

    def agent_folders(self, agent: str) -> AgentFolders:
        """Unpack what `agent` needs (once per host) and say where each part is."""
        spec = self.project.agents[agent]
        runtime, code = self.unpacked(RUNTIME_ARTIFACT), self.unpacked(CODE_ARTIFACT) / spec.folder
        scientific = self.unpacked(SCIENTIFIC_ARTIFACT) if spec.runtime == SCIENTIFIC_RUNTIME else None
        return AgentFolders(
            stdlib=runtime / RUNTIME_STDLIB if scientific is None else scientific / SCIENTIFIC_LIB,
            sandbox=runtime / RUNTIME_SANDBOX,
            code=code,
            deps=self.unpacked(DEPS_ARTIFACT) / agent,
            data=None if spec.data_dir is None else code / spec.data_dir,
            runtime_guest=None if scientific is None else scientific / SCIENTIFIC_GUEST,
        )

    def agent_code(self, agent: str) -> FileEntry:
        """Return the entry of what `agent` runs as: its component, or its memory image on the scientific runtime."""
        scientific = self.project.agents[agent].runtime == SCIENTIFIC_RUNTIME
        return self.manifest.files[image_path(agent) if scientific else component_path(agent)]

    def compiled_sha256(self, agent: str) -> str:
        """Return the SHA256 of the code compiled for `agent`: its component's, or the scientific runtime module's."""
        if self.project.agents[agent].runtime == SCIENTIFIC_RUNTIME:
            return self._scientific_module().sha256
        return self.component(agent)[1].sha256

    def scientific_module(self) -> tuple[Path, str]:
        """Return the scientific runtime's core module, unpacked on this host, and the SHA256 it must have."""
        return self.unpacked(SCIENTIFIC_ARTIFACT) / SCIENTIFIC_MODULE, self._scientific_module().sha256

    def _scientific_module(self) -> FileEntry:
        return next(entry for entry in self.listing(SCIENTIFIC_ARTIFACT).files if entry.path == SCIENTIFIC_MODULE)

    def image(self, agent: str) -> Path:
        """Return a copy of `agent`'s memory image that this host wrote, checked against its SHA256 as it was copied.

        Instances are restored from that copy, not from the dist: the dist may change after it was verified.
        """
        entry = self.manifest.files[image_path(agent)]
        copy = cache_dir("images") / f"{entry.sha256}.img"
        if not copy.is_file():
            copy_verified(self.path / entry.path, entry, copy)
        return copy


def verify_dist(dist: Path, trust: TrustPolicy | None = None, *, members: bool = True) -> VerifiedDist:
    """Check every byte of `dist` against its manifests, and its signature against `trust` if given.

    With `members=False` the archives' members are not read (their archives' SHA256 still is): for a
    caller that only uses archives through VerifiedDist.unpacked, which checks every member when it extracts.
    Raise one VerificationError listing every problem.
    """
    if not dist.is_dir():
        raise VerificationError([f"{dist}: no such dist directory"])
    problems: list[str] = []
    manifest = _load_manifest(dist, trust, problems)
    if manifest is None:
        # Without manifest.json nothing else can be checked against anything.
        raise VerificationError(problems)
    directories = parent_folders(manifest.files)
    found = walk(dist, directories.__contains__)
    expected = manifest.files.keys() | directories | {MANIFEST, MANIFEST_SHA256, SIGNATURE}
    for path, kind in sorted(found.items()):
        if path not in expected:
            problems.append(f"{display(path)}: unexpected {kind} (not in {MANIFEST})")
    # Largest first, so that no core is left hashing one big file at the end.
    regular = sorted((entry for path, entry in manifest.files.items() if found.get(path) == "file"), key=lambda entry: -entry.size)
    # Hashing is most of the work and hashlib lets go of the GIL: the files are hashed in parallel, and meanwhile this
    # thread parses the archives' listings (each is checked against its own SHA256 as it is read).
    with ThreadPoolExecutor(max(1, min(len(regular), os.cpu_count() or 1))) as pool:
        hashed = pool.map(partial(_file_problem, dist), regular)
        listings = {listing: _listing(dist, manifest, listing) for listing in ARTIFACTS.values() if found.get(listing) == "file"}
        file_problems = dict(zip((entry.path for entry in regular), hashed, strict=True))
    verified = set()
    for path in sorted(manifest.files):
        kind = found.get(path)
        if kind is None:
            problems.append(f"{path}: missing")
        elif kind != "file":
            problems.append(f"{path}: is a {kind}, not a regular file")
        elif file_problems[path] is not None:
            problems.append(file_problems[path])
        else:
            verified.add(path)
    for agent, spec in manifest.project.agents.items():
        path, what = (image_path(agent), "memory image") if spec.runtime == SCIENTIFIC_RUNTIME else (component_path(agent), "component")
        if path not in manifest.files:
            problems.append(f"{path}: not listed in {MANIFEST} (the {what} of agent '{agent}')")
    for archive, listing in ARTIFACTS.items():
        if archive in manifest.files or listing in manifest.files or _needed(archive, manifest.project):
            _check_artifact(dist, manifest, archive, listing, listings.get(listing), verified, problems, members)
    if problems and trust is not None and manifest.signed_by is not None:
        problems.append(
            f"{SIGNATURE}: {MANIFEST} carries a valid signature by trusted key {manifest.signed_by}, "
            "but the dist differs from what was signed"
        )
    if problems:
        raise VerificationError(problems)
    return VerifiedDist(dist, manifest, signature_checked=trust is not None)


def _needed(archive: str, project: Project) -> bool:
    """Whether a dist of `project` must hold `archive`: the scientific runtime's only where an agent runs on it."""
    return archive != SCIENTIFIC_ARTIFACT or any(spec.runtime == SCIENTIFIC_RUNTIME for spec in project.agents.values())


def load_artifact_manifest(dist: Path, manifest: Manifest, listing: str) -> ArtifactManifest:
    """Read and parse the artifact manifest `listing` of `dist`, refusing it unless it matches `manifest`.

    Use this rather than reading the file directly after verify_dist: it may have changed since.
    """
    problems: list[str] = []
    data = _read_small(dist / listing, listing, problems)
    if data is None:
        raise VerificationError(problems)
    if listing not in manifest.files:
        raise VerificationError([f"{listing}: not listed in {MANIFEST}"])
    if (digest := hashlib.sha256(data).hexdigest()) != manifest.files[listing].sha256:
        raise VerificationError([f"{listing}: {sha256_mismatch(manifest.files[listing].sha256, digest)}"])
    return ArtifactManifest.from_json(data, listing)


def _load_manifest(dist: Path, trust: TrustPolicy | None, problems: list[str]) -> Manifest | None:
    """Read manifest.json, check it against manifest.json.sha256 and its signature, and parse it.

    The parsed manifest's `signed_by` is the key id of a well-formed signature that satisfies `trust`,
    or with no `trust` of any well-formed signature; otherwise None.
    """
    line = _read_small(dist / MANIFEST_SHA256, MANIFEST_SHA256, problems)
    expected = None
    if line is not None:
        if match := _SHA256_LINE.fullmatch(line):
            expected = match[1].decode()
        else:
            problems.append(f"{MANIFEST_SHA256}: malformed: expected one line '<sha256>  {MANIFEST}'")
    data = _read_small(dist / MANIFEST, MANIFEST, problems)
    if data is None:
        return None
    if expected is not None and (actual := hashlib.sha256(data).hexdigest()) != expected:
        problems.append(f"{MANIFEST}: does not match {MANIFEST_SHA256}: expected {expected}, got {actual}")
    signed_by = _check_signature(dist, data, trust, problems)
    try:
        return replace(Manifest.from_json(data), signed_by=signed_by)
    except VerificationError as e:
        problems.extend(e.problems)
        return None


def _check_signature(dist: Path, manifest_data: bytes, trust: TrustPolicy | None, problems: list[str]) -> str | None:
    """Check the signature file, if any, and its signature over `manifest_data` under `trust`; return its key id if it passes."""
    signature = None
    if os.path.lexists(dist / SIGNATURE):
        unusable: list[str] = []
        data = _read_small(dist / SIGNATURE, SIGNATURE, unusable)
        try:
            signature = None if data is None else Signature.from_json(data)
        except ValueError as e:
            unusable.append(f"{SIGNATURE}: malformed: {e}")
        if unusable:
            problems.extend(f"{problem} ({trust.describe()})" if trust else problem for problem in unusable)
            return None
    if trust is not None and (problem := trust.check(signature, manifest_data)):
        problems.append(f"{SIGNATURE}: {problem}")
        return None
    return signature and signature.key_id


def _file_problem(dist: Path, entry: FileEntry) -> str | None:
    """Return what is wrong with the file of `entry` (its size or SHA256), or None if it is as listed."""
    try:
        with open_nofollow(dist / entry.path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != entry.size:
                return f"{entry.path}: size mismatch: expected {entry.size}, got {size}"
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        return f"{entry.path}: cannot read: {e.strerror}"
    if digest != entry.sha256:
        return f"{entry.path}: {sha256_mismatch(entry.sha256, digest)}"
    return None


def _listing(dist: Path, manifest: Manifest, listing: str) -> ArtifactManifest | VerificationError:
    """Return the artifact manifest `listing` of `dist` as load_artifact_manifest reads it, or the error it raised."""
    try:
        return load_artifact_manifest(dist, manifest, listing)
    except VerificationError as e:
        return e


def _check_artifact(
    dist: Path, manifest: Manifest, archive: str, listing: str, artifact: ArtifactManifest | VerificationError | None,
    verified: set[str], problems: list[str], members: bool,
) -> None:
    """Check the artifact manifest `listing` (read as `artifact`) against `archive`, and every member of `archive` against it."""
    for name in (archive, listing):
        if name not in manifest.files:
            problems.append(f"{name}: not listed in {MANIFEST}")
    if not {archive, listing} <= verified:
        # Already reported; the members of a file that fails its own hash are not worth reading.
        return
    assert artifact is not None  # a verified listing is a regular file, read while the files were hashed
    if isinstance(artifact, VerificationError):
        problems.extend(artifact.problems)
        return
    entry = manifest.files[archive]
    if artifact.artifact != archive:
        problems.append(f"{listing}: artifact: expected {archive!r}, got {reprlib.repr(artifact.artifact)}")
    if artifact.size != entry.size:
        problems.append(f"{listing}: size: expected {entry.size} (the size of {archive}), got {artifact.size}")
    if artifact.sha256 != entry.sha256:
        problems.append(f"{listing}: sha256: expected {entry.sha256} (the sha256 of {archive}), got {artifact.sha256}")
    if members:
        from wasm_agents.artifacts.archive import member_problems  # tarfile and gzip: not for `run`, which skips members

        problems.extend(member_problems(dist / archive, artifact, listing))


def _read_small(path: Path, name: str, problems: list[str]) -> bytes | None:
    """Return the content of the regular file `path` if it is at most MAX_MANIFEST_SIZE, else record why not."""
    try:
        found = file_kind(os.lstat(path).st_mode)
        if found != "file":
            problems.append(f"{name}: is a {found}, not a regular file")
            return None
        with open_nofollow(path) as f:
            data = f.read(MAX_MANIFEST_SIZE + 1)
    except FileNotFoundError:
        problems.append(f"{name}: missing")
        return None
    except OSError as e:
        problems.append(f"{name}: cannot read: {e.strerror}")
        return None
    if len(data) > MAX_MANIFEST_SIZE:
        problems.append(f"{name}: larger than the limit of {MAX_MANIFEST_SIZE} bytes")
        return None
    return data
