"""Signed dists and the trust policy: keys, signatures, provenance, and every way a dist can fail the policy."""

import base64
import hashlib
import json
import os
import pickle
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from wasm_agents.artifacts import verify_dist
from wasm_agents.artifacts.archive import artifact_manifest, write_reproducible_tar
from wasm_agents.artifacts.layout import MANIFEST, MANIFEST_SHA256, PROVENANCE, RUNTIME_ARTIFACT, SIGNATURE
from wasm_agents.artifacts.model import Manifest
from wasm_agents.build import build
from wasm_agents.builder.package import package
from wasm_agents.errors import VerificationError, WasmAgentsError
from wasm_agents.inspection import describe
from wasm_agents.project import AgentSpec, ChainPolicy, Project
from wasm_agents.artifacts.signing import (
    TRUSTED_KEYS_ENV,
    Signature,
    TrustPolicy,
    generate_keypair,
    load_private_key,
    load_public_key,
    trust_policy,
)

from conftest import copy_project

CLI = [sys.executable, "-m", "wasm_agents"]


def wasm_agents(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key != TRUSTED_KEYS_ENV} | (env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, env=environ, **kwargs)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, str]]:
    """Two key pairs: name -> (private key file, public key file, key id)."""
    folder = tmp_path_factory.mktemp("keys")
    pairs = {}
    for name in ("release", "other"):
        key_id = generate_keypair(folder / name)
        pairs[name] = (folder / f"{name}.key", folder / f"{name}.pub", key_id)
    return pairs


def policy(keys: dict, *names: str) -> TrustPolicy:
    return TrustPolicy.load([keys[name][1] for name in names])


@pytest.fixture(scope="module")
def signed_dist(example_project: Path, keys: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built again (components from the cache) and signed with the "release" key."""
    project = copy_project(example_project, tmp_path_factory.mktemp("signed") / "quickstart")
    return build(project, signing_key=keys["release"][0], command=["wasm-agents", "build", "--sign", "release.key"]).dist


@pytest.fixture(scope="module")
def signed_twin(signed_dist: Path, keys: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another build signed with the same key: another chain policy and command, the same agent folders."""
    project = copy_project(signed_dist.parent, tmp_path_factory.mktemp("twin") / "quickstart")
    (project / "wasm-agents.toml").write_text("[chain]\nmax_hops = 7\n")
    return build(project, signing_key=keys["release"][0], command=["twin"]).dist


def tampered(dist: Path, tmp_path: Path) -> Path:
    """A copy of `dist` to change."""
    return Path(shutil.copytree(dist, tmp_path / "dist"))


def refusal(dist: Path, trust: TrustPolicy | None) -> list[str]:
    with pytest.raises(VerificationError) as caught:
        verify_dist(dist, trust)
    return caught.value.problems


def flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def rewrite_manifest(dist: Path, manifest: Manifest) -> None:
    """What an attacker who can write the dist does: rewrite manifest.json and its SHA256 to match."""
    data = manifest.to_json()
    (dist / MANIFEST).write_bytes(data)
    (dist / MANIFEST_SHA256).write_text(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST}\n")


# Keys


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_a_public_key(tmp_path):
    key_id = generate_keypair(tmp_path / "sub" / "k")
    assert len(key_id) == 16 and int(key_id, 16) >= 0
    assert (tmp_path / "sub" / "k.key").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "sub" / "k.key").read_bytes()
    assert b"PRIVATE" not in (tmp_path / "sub" / "k.pub").read_bytes()
    public = load_private_key(tmp_path / "sub" / "k.key").public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert hashlib.sha256(raw).hexdigest()[:16] == key_id
    assert list(TrustPolicy.load([tmp_path / "sub" / "k.pub"]).keys) == [key_id]
    with pytest.raises(WasmAgentsError, match="already exists"):
        generate_keypair(tmp_path / "sub" / "k")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_private_key_file_others_can_access_is_refused(tmp_path, mode):
    generate_keypair(tmp_path / "k")
    (tmp_path / "k.key").chmod(mode)
    with pytest.raises(WasmAgentsError, match=rf"k.key: private key file is accessible to others \(mode {mode:03o}\).*chmod 600"):
        load_private_key(tmp_path / "k.key")


def test_build_refuses_a_loose_key_before_building_and_leaves_no_dist(tmp_path, keys):
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "main.py").write_text("def main(config)\n")  # would fail later, if it got that far
    loose = tmp_path / "loose.key"
    shutil.copyfile(keys["release"][0], loose)
    loose.chmod(0o644)
    with pytest.raises(WasmAgentsError, match="accessible to others"):
        build(tmp_path, signing_key=loose)
    assert not (tmp_path / "dist").exists()


def test_keys_of_the_wrong_kind_are_refused(tmp_path, keys):
    with pytest.raises(WasmAgentsError, match="is a private key; trust the public key"):
        load_public_key(keys["release"][0])
    shutil.copyfile(keys["release"][1], tmp_path / "pub.key")
    (tmp_path / "pub.key").chmod(0o600)
    with pytest.raises(WasmAgentsError, match="not an Ed25519 private key"):
        load_private_key(tmp_path / "pub.key")
    (tmp_path / "junk.pub").write_text("ssh-ed25519 AAAA\n")
    with pytest.raises(WasmAgentsError, match="junk.pub: not an Ed25519 public key"):
        load_public_key(tmp_path / "junk.pub")
    with pytest.raises(WasmAgentsError, match="cannot read key"):
        load_public_key(tmp_path / "missing.pub")


def test_trust_policy_comes_from_the_options_else_the_environment(tmp_path, keys):
    folder = tmp_path / "trusted"
    folder.mkdir()
    for name in ("release", "other"):
        shutil.copyfile(keys[name][1], folder / f"{name}.pub")
    both = {keys["release"][2], keys["other"][2]}
    assert trust_policy([], {}) is None and trust_policy([], {TRUSTED_KEYS_ENV: ""}) is None
    assert set(trust_policy([], {TRUSTED_KEYS_ENV: str(folder)}).keys) == both
    assert set(trust_policy([keys["other"][1]], {TRUSTED_KEYS_ENV: str(folder)}).keys) == {keys["other"][2]}
    assert set(trust_policy([folder], {}).keys) == both
    (tmp_path / "empty").mkdir()
    with pytest.raises(WasmAgentsError, match=f"{TRUSTED_KEYS_ENV}: .*empty: no .pub files"):
        trust_policy([], {TRUSTED_KEYS_ENV: str(tmp_path / "empty")})


def respelled(text: str) -> str:
    """Spell the bytes of a base64 `text` ending in "==" otherwise: with an unused bit of its last digit set."""
    digits = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    other = text[:-3] + digits[digits.index(text[-3]) ^ 1] + "=="
    assert base64.b64decode(other) == base64.b64decode(text)
    return other


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda obj: obj.pop("key_id"), "missing key 'key_id'"),
        (lambda obj: obj.update(extra=1), "unknown key 'extra' (allowed: algorithm, format, key_id, signature)"),
        (lambda obj: obj.update(format="wasm-agents-signature/2"), "format: expected 'wasm-agents-signature/1', got 'wasm-agents-signature/2'"),
        (lambda obj: obj.update(algorithm="rsa"), "algorithm: expected 'ed25519', got 'rsa'"),
        (lambda obj: obj.update(key_id="ABCDEF0123456789"), "key_id: expected 16 lowercase hex digits, got 'ABCDEF0123456789'"),
        (lambda obj: obj.update(signature="not base64!"), "signature: expected 64 bytes in canonical base64, got 'not base64!'"),
        (lambda obj: obj.update(signature=base64.b64encode(b"short").decode()), "signature: expected 64 bytes in canonical base64, got 'c2hvcnQ='"),
        (lambda obj: obj.update(signature=respelled(obj["signature"])), "signature: expected 64 bytes in canonical base64, got "),
        (lambda obj: obj.update(signature=None), "signature: expected 64 bytes in canonical base64, got None"),
    ],
)
def test_malformed_signature_files_are_refused(signed_dist, keys, tmp_path, change, expected):
    obj = json.loads((signed_dist / SIGNATURE).read_bytes())
    change(obj)
    data = json.dumps(obj).encode()
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}"):
        Signature.from_json(data)
    dist = tampered(signed_dist, tmp_path)
    (dist / SIGNATURE).write_bytes(data)
    assert refusal(dist, None)[0].startswith(f"{SIGNATURE}: malformed: {expected}")  # well-formedness is checked without a policy too
    problems = refusal(dist, policy(keys, "release"))
    assert problems[0].startswith(f"{SIGNATURE}: malformed: {expected}") and keys["release"][2] in problems[0]


# Signed dists


def test_signed_dist_round_trip(signed_dist, keys):
    assert pickle.loads(pickle.dumps(policy(keys, "release"))) == policy(keys, "release")  # can travel to workers
    manifest = verify_dist(signed_dist, policy(keys, "release")).manifest
    assert manifest.signed_by == keys["release"][2]
    assert verify_dist(signed_dist).signed_by == keys["release"][2]  # found, well-formed, not checked
    assert verify_dist(signed_dist, policy(keys, "other", "release")).signed_by == keys["release"][2]
    assert SIGNATURE not in manifest.files and PROVENANCE in manifest.files
    description = describe(signed_dist, policy(keys, "release"))
    assert description["signature"] == {"key_id": keys["release"][2], "checked": True}


def test_provenance_records_inputs_builder_command_and_outputs(signed_dist):
    statement = json.loads((signed_dist / PROVENANCE).read_bytes())
    manifest = verify_dist(signed_dist).manifest
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    outputs = {subject["name"]: subject["digest"]["sha256"] for subject in statement["subject"]}
    assert outputs == {path: entry.sha256 for path, entry in manifest.files.items() if path != PROVENANCE}
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"] == {"command": ["wasm-agents", "build", "--sign", "release.key"], "offline": False, "allow_unsafe_sources": False}
    inputs = {dep["name"]: dep for dep in definition["resolvedDependencies"]}
    main = (signed_dist.parent / "agent" / "main.py").read_bytes()
    assert inputs["agent/main.py"]["digest"]["sha256"] == hashlib.sha256(main).hexdigest()
    assert "agent/requirements.txt" in inputs and "agent/requirements.lock" in inputs
    lock = (signed_dist.parent / "agent" / "requirements.lock").read_text()
    wheels = [dep for dep in inputs.values() if dep.get("uri", "").startswith("pkg:pypi/")]
    assert {dep["uri"] for dep in wheels} == {"pkg:pypi/six@1.17.0", "pkg:pypi/python-dateutil@2.9.0.post0"}
    assert all(f"--hash=sha256:{dep['digest']['sha256']}" in lock and dep["annotations"] == {"agent": "agent"} for dep in wheels)
    assert statement["predicate"]["runDetails"]["builder"]["version"] == manifest.tools


def test_private_key_is_never_written_to_the_dist(signed_dist, keys):
    private = load_private_key(keys["release"][0])
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem_body = b"".join(keys["release"][0].read_bytes().splitlines()[1:-1])
    for path in signed_dist.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert raw not in data and pem_body not in data and base64.b64encode(raw) not in data, path


def test_another_key_is_refused_and_both_key_ids_are_named(signed_dist, keys):
    problems = refusal(signed_dist, policy(keys, "other"))
    assert problems == [f"{SIGNATURE}: signed by key {keys['release'][2]}, which is not trusted (trusted key: {keys['other'][2]})"]


def test_unsigned_dist_is_refused_under_a_policy_and_verifies_without_one(example_dist, keys):
    problems = refusal(example_dist, policy(keys, "release"))
    assert problems == [
        f"{SIGNATURE}: missing: the dist is unsigned, and a signature by a trusted key is required (trusted key: {keys['release'][2]})"
    ]
    assert verify_dist(example_dist).signed_by is None
    assert describe(example_dist)["signature"] is None


def test_flipped_bit_in_the_signature_is_refused(signed_dist, keys, tmp_path):
    dist = tampered(signed_dist, tmp_path)
    signature = Signature.from_json((dist / SIGNATURE).read_bytes())
    damaged = bytearray(signature.signature)
    damaged[10] ^= 0x01
    (dist / SIGNATURE).write_bytes(Signature(signature.key_id, bytes(damaged)).to_json())
    verify_dist(dist)  # still well-formed: without a policy nothing checks it
    problems = refusal(dist, policy(keys, "release"))
    assert problems[0] == (
        f"{SIGNATURE}: the signature by trusted key {keys['release'][2]} does not match manifest.json: "
        "the manifest was changed after signing or the signature is damaged"
    )


def test_flipped_byte_anywhere_in_the_signature_file_is_refused(signed_dist, keys, tmp_path):
    trust, manifest = policy(keys, "release"), (signed_dist / MANIFEST).read_bytes()
    original = (signed_dist / SIGNATURE).read_bytes()
    for offset in range(len(original)):  # what verify_dist does with the file, byte by byte
        damaged = bytearray(original)
        damaged[offset] ^= 0x01
        try:
            problem = trust.check(Signature.from_json(bytes(damaged)), manifest)
        except ValueError:
            continue
        assert problem is not None and keys["release"][2] in problem, offset
    dist = tampered(signed_dist, tmp_path)
    at = original.index(b'"signature": "') + 20  # inside the base64 text: swap in another base64 letter
    (dist / SIGNATURE).write_bytes(original[:at] + (b"B" if original[at:at + 1] == b"A" else b"A") + original[at + 1:])
    assert refusal(dist, trust)[0].startswith(f"{SIGNATURE}: the signature by trusted key {keys['release'][2]} does not match")


def test_flipped_byte_in_any_file_is_refused_with_the_key_id(signed_dist, keys, tmp_path):
    files = sorted(p.relative_to(signed_dist).as_posix() for p in signed_dist.rglob("*") if p.is_file())
    assert {MANIFEST, MANIFEST_SHA256, SIGNATURE, PROVENANCE} <= set(files)
    for relative in files:
        dist = tampered(signed_dist, tmp_path)
        flip(dist / relative)
        problems = refusal(dist, policy(keys, "release"))
        assert any(relative in problem or MANIFEST in problem for problem in problems), (relative, problems)
        assert keys["release"][2] in " ".join(problems), (relative, problems)
        shutil.rmtree(dist)


def test_rewritten_hashes_pass_without_a_policy_but_not_the_signature(signed_dist, keys, tmp_path):
    dist = tampered(signed_dist, tmp_path)
    flip(dist / "components/multiplier.wasm")
    manifest = verify_dist(signed_dist).manifest
    files = dict(manifest.files)
    files["components/multiplier.wasm"] = type(files["components/multiplier.wasm"])(
        "components/multiplier.wasm", (dist / "components/multiplier.wasm").stat().st_size,
        hashlib.sha256((dist / "components/multiplier.wasm").read_bytes()).hexdigest(),
    )
    rewrite_manifest(dist, Manifest(manifest.format, manifest.tools, manifest.project, files))
    verify_dist(dist)  # every hash matches again: hashes alone cannot stop this
    problems = refusal(dist, policy(keys, "release"))
    assert problems == [
        f"{SIGNATURE}: the signature by trusted key {keys['release'][2]} does not match manifest.json: "
        "the manifest was changed after signing or the signature is damaged"
    ]
    (dist / SIGNATURE).unlink()  # nor does dropping the signature help
    assert "the dist is unsigned" in refusal(dist, policy(keys, "release"))[0]


@pytest.mark.parametrize("swapped", [[PROVENANCE], [MANIFEST], [MANIFEST, MANIFEST_SHA256], [MANIFEST, MANIFEST_SHA256, SIGNATURE]])
def test_content_of_another_signed_build_swapped_in_is_refused(signed_dist, signed_twin, keys, tmp_path, swapped):
    verify_dist(signed_twin, policy(keys, "release"))
    dist = tampered(signed_dist, tmp_path)
    for name in swapped:
        shutil.copyfile(signed_twin / name, dist / name)
    problems = refusal(dist, policy(keys, "release"))
    assert keys["release"][2] in " ".join(problems)
    if MANIFEST in swapped and SIGNATURE not in swapped:
        assert any("does not match manifest.json" in problem for problem in problems), problems
    else:  # a valid signature of one build or the other: the signed hashes refuse the swapped-in files
        assert any(problem.startswith(f"{PROVENANCE}: s") and "mismatch" in problem for problem in problems), problems
        assert problems[-1] == (
            f"{SIGNATURE}: {MANIFEST} carries a valid signature by trusted key {keys['release'][2]}, "
            "but the dist differs from what was signed"
        )


def package_inputs(root: Path, component: bytes) -> dict:
    """Staged code, deps and components as package() takes them; `component` is the root agent's."""
    files = {"code/agent/main.py": b"x = 1\n", "deps/agent/six.py": b"# six\n", "runtime/python/os.py": b"# os\n", "agent.wasm": component}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    write_reproducible_tar(root / "runtime", root / RUNTIME_ARTIFACT)
    return {
        "code_dir": root / "code",
        "deps_dir": root / "deps",
        "runtime": (root / RUNTIME_ARTIFACT, artifact_manifest(root / RUNTIME_ARTIFACT, RUNTIME_ARTIFACT)),
        "components": {"agent": root / "agent.wasm"},
        "project": Project({"agent": AgentSpec("agent", "agent")}, ChainPolicy(order=("agent",))),
        "tools": {"wasm-agents": "0.1.0"},
    }


@pytest.mark.parametrize(
    "moved, words",
    [
        (["components/agent.wasm"], "components/agent.wasm: sha256 mismatch"),  # new artifact under the old signed manifest
        ([MANIFEST, MANIFEST_SHA256, SIGNATURE], "components/agent.wasm: sha256 mismatch"),  # old signed manifest replayed
    ],
)
def test_old_signed_manifest_replayed_with_new_artifacts_is_refused(keys, tmp_path, moved, words):
    private = load_private_key(keys["release"][0])
    old = package(**package_inputs(tmp_path / "old", b"\0asm version 1"), dist=tmp_path / "old-dist", signing_key=private)
    new = package(**package_inputs(tmp_path / "new", b"\0asm version 2"), dist=tmp_path / "new-dist", signing_key=private)
    assert old.signed_by == new.signed_by == keys["release"][2]
    for name in moved:  # old signature with new artifacts, both ways round
        source, target = ("new-dist", "old-dist") if name.startswith("components") else ("old-dist", "new-dist")
        shutil.copyfile(tmp_path / source / name, tmp_path / target / name)
    target = tmp_path / ("old-dist" if moved[0].startswith("components") else "new-dist")
    problems = refusal(target, policy(keys, "release"))
    assert words in problems[0] and "valid signature by trusted key" in problems[-1]


def test_signature_cannot_be_listed_or_be_a_directory(signed_dist, keys, tmp_path):
    dist = tampered(signed_dist, tmp_path)
    (dist / SIGNATURE).unlink()
    (dist / SIGNATURE).mkdir()
    problems = refusal(dist, policy(keys, "release"))
    assert problems == [f"{SIGNATURE}: is a directory, not a regular file (trusted key: {keys['release'][2]})"]
    manifest = json.loads((signed_dist / MANIFEST).read_bytes())
    manifest["files"][SIGNATURE] = {"size": 1, "sha256": "0" * 64}
    with pytest.raises(VerificationError, match="is the signature of manifest.json, which cannot list it"):
        Manifest.from_json(json.dumps(manifest).encode())


# The command line


def test_cli_keygen_build_verify_run_with_a_trust_policy(example_project, tmp_path):
    project = copy_project(example_project, tmp_path / "project")
    done = wasm_agents("keygen", str(tmp_path / "keys" / "release"))
    assert done.returncode == 0, done.stderr
    key_id = done.stdout.split()[1].rstrip(":")  # "Key <id>: private key ..."
    assert len(key_id) == 16 and (tmp_path / "keys" / "release.key").stat().st_mode & 0o777 == 0o600
    done = wasm_agents("build", str(project), "--sign", str(tmp_path / "keys" / "release.key"), "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1])["signed_by"] == key_id
    assert (tmp_path / "keys" / "release.key").read_text().splitlines()[1] not in done.stderr + done.stdout
    dist, pub = str(project / "dist"), str(tmp_path / "keys" / "release.pub")
    done = wasm_agents("verify", dist, "--trusted-key", pub)
    assert done.returncode == 0 and done.stdout.strip().endswith(f"12 files verified; signed by trusted key {key_id}")
    done = wasm_agents("run", dist, "--trusted-key", pub, "--task", '{"op": "multiply", "a": 6, "b": 7}')
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == 42
    done = wasm_agents("run", dist, "--task", '{"op": "add", "a": 2, "b": 3}', env={TRUSTED_KEYS_ENV: str(tmp_path / "keys")})
    assert done.returncode == 0 and json.loads(done.stdout)["result"] == 5
    done = wasm_agents("inspect", dist)
    assert done.returncode == 0 and f"Signature: signed by key {key_id} (not checked" in done.stdout


def test_cli_refusals_exit_3_and_name_the_key_ids(signed_dist, example_dist, keys):
    other_id, release_id = keys["other"][2], keys["release"][2]
    done = wasm_agents("run", str(signed_dist), "--trusted-key", str(keys["other"][1]), "--task", "{}")
    assert done.returncode == 3 and done.stdout == "" and "agent.start" not in done.stderr
    assert f"signed by key {release_id}, which is not trusted (trusted key: {other_id})" in done.stderr
    done = wasm_agents("verify", str(example_dist), env={TRUSTED_KEYS_ENV: str(keys["release"][1])})
    assert done.returncode == 3 and "the dist is unsigned" in done.stderr and release_id in done.stderr
    done = wasm_agents("inspect", str(example_dist))
    assert done.returncode == 0 and "Signature: unsigned" in done.stdout
    done = wasm_agents("verify", str(example_dist))
    assert done.returncode == 0 and done.stdout.strip().endswith("; unsigned")


def test_cli_bad_keys_exit_2(tmp_path, keys, example_dist):
    loose = tmp_path / "loose.key"
    shutil.copyfile(keys["release"][0], loose)
    loose.chmod(0o644)
    done = wasm_agents("build", str(tmp_path), "--sign", str(loose), "--quiet")
    assert done.returncode == 2 and "accessible to others (mode 644)" in done.stderr and "chmod 600" in done.stderr
    done = wasm_agents("verify", str(example_dist), "--trusted-key", str(keys["release"][0]))
    assert done.returncode == 2 and "is a private key" in done.stderr
    done = wasm_agents("keygen", str(keys["release"][0]).removesuffix(".key"))
    assert done.returncode == 2 and "already exists" in done.stderr
