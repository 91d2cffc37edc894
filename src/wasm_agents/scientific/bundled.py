"""The distributions built into the scientific runtime (numpy, pandas, scipy, ...), as its zip declares them.

Their `*.dist-info` folders, each holding its METADATA, sit at the top of the runtime's standard-library zip,
where `importlib.metadata` in the guest finds them too.
"""

import functools
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name

from wasm_agents.errors import WasmAgentsError
from wasm_agents.scientific.wheel import STDLIB_ZIP_NAME, runtime_files

_METADATA = re.compile(r"[^/]+\.dist-info/METADATA")


@dataclass(frozen=True)
class BundledDistribution:
    """A distribution built into the runtime: its name as published, its version and its core metadata file."""

    name: str
    version: str
    metadata: bytes  # the METADATA file, byte for byte


@functools.cache
def bundled_distributions(*, offline: bool = False) -> Mapping[str, BundledDistribution]:
    """Return the runtime's built-in distributions by canonical name, read from the .dist-info folders of its zip."""
    path = runtime_files(offline=offline).stdlib / STDLIB_ZIP_NAME
    found: dict[str, BundledDistribution] = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if not _METADATA.fullmatch(member):
                continue
            metadata = archive.read(member)
            fields, _ = parse_email(metadata)
            if "name" not in fields or "version" not in fields:
                raise WasmAgentsError(f"{path}: {member} has no Name or Version field")
            found[canonicalize_name(fields["name"])] = BundledDistribution(fields["name"], fields["version"], metadata)
    return MappingProxyType(dict(sorted(found.items())))
