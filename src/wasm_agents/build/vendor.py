"""Resolve, lock, cache and install an agent's third-party wheels for the sandboxed guest interpreter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.sources import WheelFile
from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)

from wasm_agents.artifacts import sha256_file
from wasm_agents.errors import VendorError
from wasm_agents.paths import cache_dir, write_atomically
from wasm_agents.sandbox import GUEST_PYTHON

# CPython on WASI reports sysconfig.get_platform() == "wasi-0.0.0-wasm32" (wasi-libc's uname is a
# placeholder), hence this tag (used by componentize-py's docs and wasi-wheels indexes outside PyPI).
WASI_PLATFORMS = ("wasi_0_0_0_wasm32",)
GUEST_TAGS = frozenset(cpython_tags((3, 14), ["cp314"], WASI_PLATFORMS)) | frozenset(
    compatible_tags((3, 14), "cp314", [*WASI_PLATFORMS, "any"])
)
PIP_TARGET_ARGS = [
    "--only-binary=:all:",
    "--python-version", GUEST_PYTHON,
    "--implementation", "cp",
    "--abi", "none",
    "--abi", "cp314",
    "--platform", "any",
    *(arg for platform in WASI_PLATFORMS for arg in ("--platform", platform)),
]  # fmt: skip

# The guest's PEP 508 marker environment, as CPython 3.14.0 of componentize-py 0.25.1 reports it
# (checked against a real guest by tests/test_run.py): pip evaluates markers with it, not the host's.
GUEST_MARKERS = {
    "implementation_name": "cpython",
    "implementation_version": f"{GUEST_PYTHON}.0",
    "os_name": "posix",
    "platform_machine": "wasm32",
    "platform_python_implementation": "CPython",
    "platform_release": "0.0.0",
    "platform_system": "wasi",
    "platform_version": "0.0.0",
    "python_full_version": f"{GUEST_PYTHON}.0",
    "python_version": GUEST_PYTHON,
    "sys_platform": "wasi",
}

# Run as a script, not with -m: `-m` would import the whole build package (40–100 ms) into every pip process;
# -P keeps this folder off sys.path.
GUEST_PIP = Path(__file__).with_name("guest_pip.py")

LOCK_HEADER = "# wasm-agents lock v1; requirements.txt sha256={}"
_LOCK_HEADER_RE = re.compile(r"# wasm-agents lock v1; requirements\.txt sha256=([0-9a-f]{64})")
_LOCK_LINE_RE = re.compile(r"([^=\s]+)==(\S+) --hash=sha256:([0-9a-f]{64})\s+# ([^/\\\s]+\.whl)")
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")  # pip's own rule for comments in requirements files
_ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
_NETWORK_MARKERS = ("NewConnectionError", "connection broken by", "Could not fetch URL", "connection-failed")
_NOT_IN_SANDBOX = (
    "no wheel that runs in the sandbox (CPython 3.14 on WASI): only platform-specific binary wheels or "
    "source distributions are published; use a pure-Python package (py3-none-any wheel) or one that "
    "publishes a WASI wheel"
)
_INSTALLER_METADATA = {"INSTALLER": b"wasm-agents"}


@dataclass(frozen=True)
class LockedWheel:
    """One wheel pinned by an agent's requirements.lock."""

    name: str
    version: str
    filename: str
    sha256: str


def vendor(
    agent_name: str,
    agent_dir: Path,
    site_packages: Path,
    *,
    allow_unsafe_sources: bool = False,
    offline: bool = False,
) -> list[LockedWheel]:
    """Install the agent's locked requirements into `site_packages`, resolving and writing the lock first if needed."""
    requirements_path = agent_dir / "requirements.txt"
    pip_args = requirement_args(requirements_path, allow_unsafe_sources=allow_unsafe_sources)
    if not pip_args:
        return []
    requirements_sha256 = sha256_file(requirements_path)
    lock_path = agent_dir / "requirements.lock"
    wheels = read_lock(lock_path, requirements_sha256)
    if wheels is None:
        if offline:
            raise VendorError(f"{agent_name}: requirements.lock is missing or stale and offline mode cannot resolve")
        wheels = _resolve(agent_name, pip_args, cwd=agent_dir)
        write_lock(lock_path, requirements_sha256, wheels)
    paths = [_cached_wheel(agent_name, wheel, offline=offline) for wheel in wheels]
    _install(agent_name, paths, site_packages)
    return wheels


def requirement_args(path: Path, *, allow_unsafe_sources: bool) -> list[str]:
    """Return pip's arguments for the requirements in `path`, refusing sources outside the index unless allowed."""
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
            requirements.append(str(requirement))
    if unsafe:
        return ["-r", str(path)]
    return requirements


def read_lock(path: Path, requirements_sha256: str) -> list[LockedWheel] | None:
    """Return the wheels pinned by the lock at `path`, or None if it is missing or was made for other requirements."""
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    header = _LOCK_HEADER_RE.fullmatch(lines[0]) if lines else None
    if header is None or header.group(1) != requirements_sha256:
        return None
    wheels = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LOCK_LINE_RE.fullmatch(line)
        if match is None:
            raise VendorError(f"{path}:{number}: not a wasm-agents lock line; delete the lock to resolve again")
        wheels.append(LockedWheel(canonicalize_name(match[1]), match[2], match[4], match[3]))
    return sorted(wheels, key=lambda wheel: wheel.name)


def write_lock(path: Path, requirements_sha256: str, wheels: list[LockedWheel]) -> None:
    """Atomically write `wheels` to `path` in pip's hash-checking requirements format."""
    lines = [
        LOCK_HEADER.format(requirements_sha256),
        "# Generated by wasm-agents; pip can use it too: pip install --require-hashes --no-deps -r requirements.lock",
        *(f"{w.name}=={w.version} --hash=sha256:{w.sha256}  # {w.filename}" for w in wheels),
    ]
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


def _resolve(agent_name: str, pip_args: list[str], *, cwd: Path) -> list[LockedWheel]:
    """Let pip resolve and download the guest's wheels, check them, cache them and return their pins."""
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pip-") as tmp:
        _pip_download(agent_name, pip_args, Path(tmp), cwd=cwd)
        wheels = []
        for path in sorted(Path(tmp).iterdir()):
            name, version = _check_wheel(agent_name, path.name)
            sha256 = sha256_file(path)
            _store_in_cache(path, sha256)
            wheels.append(LockedWheel(name, version, path.name, sha256))
    return sorted(wheels, key=lambda wheel: wheel.name)


def _check_wheel(agent_name: str, filename: str) -> tuple[str, str]:
    """Return the canonical name and version of a downloaded wheel, refusing anything the guest cannot run."""
    try:
        name, version, _, tags = parse_wheel_filename(filename)
        if not tags.isdisjoint(GUEST_TAGS):
            return name, str(version)
    except InvalidWheelFilename:
        pass
    raise VendorError(f"{agent_name}: {filename} is not a wheel that runs in the sandbox (CPython 3.14 on WASI)")


def _cached_wheel(agent_name: str, wheel: LockedWheel, *, offline: bool) -> Path:
    """Return the cached file of a locked wheel, downloading exactly that pin if it is missing."""
    path = cache_dir("wheels") / wheel.sha256 / wheel.filename
    if path.is_file():
        _check_hash(agent_name, wheel, sha256_file(path))
        return path
    if offline:
        raise VendorError(f"{agent_name}: {wheel.filename} is not in the wheel cache and offline mode cannot fetch it")
    with tempfile.TemporaryDirectory(prefix="wasm-agents-pip-") as tmp:
        _pip_download(agent_name, ["--no-deps", f"{wheel.name}=={wheel.version}"], Path(tmp), cwd=Path(tmp))
        downloaded = Path(tmp, wheel.filename)
        if not downloaded.is_file():
            raise VendorError(f"{agent_name}: pip did not download {wheel.filename} for {wheel.name}=={wheel.version}")
        _check_hash(agent_name, wheel, sha256_file(downloaded))
        return _store_in_cache(downloaded, wheel.sha256)


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


def _pip_download(agent_name: str, args: list[str], dest: Path, *, cwd: Path) -> None:
    """Run `pip download` for the guest interpreter into `dest`, turning failures into one-line VendorErrors."""
    command = [
        sys.executable, "-P", str(GUEST_PIP), json.dumps(GUEST_MARKERS), "download", *PIP_TARGET_ARGS,
        "--dest", str(dest), "--no-input", "--disable-pip-version-check", *args,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise _pip_failure(agent_name, result.stdout + result.stderr)


def _pip_failure(agent_name: str, output: str) -> VendorError:
    """Explain a failed `pip download` in one line, naming the package without a usable wheel if there is one."""
    last = _last_error_line(output)
    if any(marker in output for marker in _NETWORK_MARKERS):
        return VendorError(f"{agent_name}: pip could not reach the package index (check the network): {last}")
    found = re.search(r"satisfies the requirement (\S+).*\(from versions: (.+)\)", output)
    if found and found[2] != "none":
        return VendorError(f"{agent_name}: no version of {found[1]} matches; versions with sandbox wheels: {found[2]}")
    missing = re.search(r"No matching distribution found for (\S+)(?: \(from ([^)]+)\))?", output)
    if missing:
        name = _project_name(missing[1])
        if not missing[2] and not _on_index(name):
            return VendorError(f"{agent_name}: {name} was not found on the package index (is the name spelled right?)")
        needed_by = f" (required by {missing[2]})" if missing[2] else ""
        return VendorError(f"{agent_name}: {name}{needed_by} has {_NOT_IN_SANDBOX}")
    conflict = re.search(r"no matching distributions available for your environment:\n((?:[ \t]+\S+\n?)+)", output)
    if conflict:
        names = ", ".join(conflict[1].split())
        return VendorError(f"{agent_name}: {names} {'has' if ',' not in names else 'have'} {_NOT_IN_SANDBOX}")
    return VendorError(f"{agent_name}: pip download failed: {last}")


def _on_index(name: str) -> bool:
    """True when the package index has any release of `name`, for any platform (a wrong name has none)."""
    command = [sys.executable, "-m", "pip", "index", "versions", "--pre", "--no-input", "--disable-pip-version-check", name]
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
