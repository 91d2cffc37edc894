"""Ed25519 keys, the signature of a dist's manifest, and the trust policy that decides whose signatures count.

Keys are PEM files: PKCS#8 for the private key (`<name>.key`, mode 600), SubjectPublicKeyInfo for
the public key (`<name>.pub`). A key id is the first 16 hex digits of the SHA256 of the raw 32-byte
public key. A signature covers the exact bytes of manifest.json, which covers every other file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import reprlib
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Self

import msgspec

if TYPE_CHECKING:  # cryptography is imported where it is used: `run` on an unsigned dist never needs it
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wasm_agents.errors import WasmAgentsError
from wasm_agents.project import Schema, convert, exactly

SIGNATURE_FORMAT = "wasm-agents-signature/1"
ALGORITHM = "ed25519"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"
TRUSTED_KEYS_ENV = "WASM_AGENTS_TRUSTED_KEYS"
MAX_KEY_FILE_SIZE = 64 << 10

_KEY_ID_LENGTH = 16
_SIGNATURE_LENGTH = 64
_SIGNATURE_SPELLING = f"{_SIGNATURE_LENGTH} bytes in canonical base64"


class _SignatureJson(Schema):
    """manifest.json.sig as stored."""

    format: exactly(SIGNATURE_FORMAT)
    algorithm: exactly(ALGORITHM)
    key_id: Annotated[str, msgspec.Meta(pattern=f"^[0-9a-f]{{{_KEY_ID_LENGTH}}}$", description=f"{_KEY_ID_LENGTH} lowercase hex digits")]
    signature: Annotated[bytes, msgspec.Meta(min_length=_SIGNATURE_LENGTH, max_length=_SIGNATURE_LENGTH, description=_SIGNATURE_SPELLING)]


@dataclass(frozen=True)
class Signature:
    """manifest.json.sig: the id of the signing key and its Ed25519 signature over manifest.json."""

    key_id: str
    signature: bytes

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        """Parse and strictly validate a signature file; raise ValueError saying what is wrong."""
        try:
            obj = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise ValueError(f"invalid JSON: {e}") from None
        stored = convert(obj, _SignatureJson, "", error=ValueError)
        # Canonical only: base64 can spell the same bytes several ways, and a signature file has one spelling.
        if base64.b64encode(stored.signature).decode() != obj["signature"]:
            raise ValueError(f"signature: expected {_SIGNATURE_SPELLING}, got {reprlib.repr(obj['signature'])}")
        return cls(stored.key_id, stored.signature)

    def to_json(self) -> bytes:
        """Serialise deterministically."""
        obj = {
            "format": SIGNATURE_FORMAT,
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return (json.dumps(obj, sort_keys=True, indent=2) + "\n").encode()


@dataclass(frozen=True)
class TrustPolicy:
    """The public keys whose signatures a dist must carry to be verified: raw 32-byte keys by key id.

    Plain bytes rather than key objects, so that a policy can be pickled and sent to remote workers.
    """

    keys: Mapping[str, bytes]

    @classmethod
    def of(cls, publics: Iterable[Ed25519PublicKey]) -> Self:
        """Trust exactly `publics`."""
        return cls({key_id(public): _raw(public) for public in publics})

    @classmethod
    def load(cls, paths: Sequence[Path]) -> Self:
        """Read the trusted keys: each path is a .pub file or a folder of them."""
        files = []
        for path in paths:
            found = sorted(path.glob(f"*{PUBLIC_SUFFIX}")) if path.is_dir() else [path]
            if not found:
                raise WasmAgentsError(f"{path}: no {PUBLIC_SUFFIX} files in this trusted-keys folder")
            files.extend(found)
        return cls.of(load_public_key(file) for file in files)

    def describe(self) -> str:
        """Name the trusted keys for a refusal message."""
        return f"trusted key{'s' if len(self.keys) > 1 else ''}: {', '.join(sorted(self.keys))}"

    def check(self, signature: Signature | None, data: bytes) -> str | None:
        """Say why `signature` over `data` does not satisfy this policy, if it does not."""
        if signature is None:
            return f"missing: the dist is unsigned, and a signature by a trusted key is required ({self.describe()})"
        raw = self.keys.get(signature.key_id)
        if raw is None:
            return f"signed by key {signature.key_id}, which is not trusted ({self.describe()})"
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature.signature, data)
        except InvalidSignature:
            return (
                f"the signature by trusted key {signature.key_id} does not match manifest.json: "
                "the manifest was changed after signing or the signature is damaged"
            )
        return None


def trust_policy(paths: Sequence[Path], environ: Mapping[str, str]) -> TrustPolicy | None:
    """Return the policy of the --trusted-key `paths`, else of TRUSTED_KEYS_ENV in `environ`, else None."""
    if paths:
        return TrustPolicy.load(paths)
    value = environ.get(TRUSTED_KEYS_ENV, "")
    if not value:
        return None
    try:
        return TrustPolicy.load([Path(part) for part in value.split(os.pathsep) if part])
    except WasmAgentsError as e:
        raise WasmAgentsError(f"{TRUSTED_KEYS_ENV}: {e}") from None


def key_id(public: Ed25519PublicKey) -> str:
    """Return the short fingerprint of `public`: the first 16 hex digits of the SHA256 of its raw bytes."""
    return hashlib.sha256(_raw(public)).hexdigest()[:_KEY_ID_LENGTH]


def sign(data: bytes, private: Ed25519PrivateKey) -> Signature:
    """Sign `data` (the bytes of manifest.json) with `private`."""
    return Signature(key_id(private.public_key()), private.sign(data))


def generate_keypair(stem: Path) -> str:
    """Write a new key pair to `stem`.key (mode 600) and `stem`.pub, refusing to overwrite; return its key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = Path(f"{stem}{PRIVATE_SUFFIX}"), Path(f"{stem}{PUBLIC_SUFFIX}")
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise WasmAgentsError(f"{path}: already exists; refusing to overwrite a key")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return key_id(private.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read the private key at `path`, refusing a file that others than its owner may read."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data, mode = _read_key_file(path)
    if os.name == "posix" and mode & 0o077:
        raise WasmAgentsError(
            f"{path}: private key file is accessible to others (mode {mode:03o}); refusing to use it. "
            f"Restrict it with: chmod 600 {path}"
        )
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise WasmAgentsError(f"{path}: encrypted private keys are not supported") from None
    except ValueError:
        private = None  # the message of cryptography could quote the file: say nothing of its content
    if not isinstance(private, Ed25519PrivateKey):
        raise WasmAgentsError(f"{path}: not an Ed25519 private key in PEM (PKCS#8) format")
    return private


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read the public key at `path`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data, _ = _read_key_file(path)
    if b"PRIVATE KEY" in data:
        raise WasmAgentsError(f"{path}: is a private key; trust the public key ({PUBLIC_SUFFIX} file) instead")
    try:
        public = serialization.load_pem_public_key(data)
    except ValueError:
        public = None
    if not isinstance(public, Ed25519PublicKey):
        raise WasmAgentsError(f"{path}: not an Ed25519 public key in PEM format")
    return public


def _raw(public: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of `public`."""
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _read_key_file(path: Path) -> tuple[bytes, int]:
    """Return the content and permission bits of the key file at `path`."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise WasmAgentsError(f"{path}: not a regular file")
            data = f.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as e:
        raise WasmAgentsError(f"{path}: cannot read key: {e.strerror}") from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise WasmAgentsError(f"{path}: too large to be a key file")
    return data, stat.S_IMODE(st.st_mode)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with permissions `mode` (less the umask) and write `data` to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with open(fd, "wb") as f:
        f.write(data)
