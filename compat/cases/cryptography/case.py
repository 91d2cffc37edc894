"""crypto: deterministic Ed25519 signatures, HKDF key derivation and AES-GCM with fixed nonces with cryptography."""


def compute(task):
    # The primitives are separate modules, imported where they are used.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(task["seed"]))
    signature = key.sign(task["message"].encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"salt", info=b"compat").derive(bytes.fromhex(task["seed"]))
    sealed = AESGCM(derived).encrypt(bytes(12), task["message"].encode(), b"aad")
    return {"signature": signature.hex(), "derived": derived.hex(), "sealed": sealed.hex()}
