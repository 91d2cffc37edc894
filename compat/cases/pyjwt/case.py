"""crypto: sign and verify HS256 JSON Web Tokens with claims checks, and refuse tampered or expired ones."""

import base64
import hashlib

import jwt


def compute(task):
    import hmac  # stdlib: check the signature independently of PyJWT

    key = task["key"]
    token = jwt.encode(task["claims"], key, algorithm="HS256", headers={"kid": "k1"})
    header_b64, payload_b64, signature_b64 = token.split(".")
    expected = hmac.new(key.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    decoded = jwt.decode(token, key, algorithms=["HS256"], audience="compat", options={"verify_exp": False})
    refusals = {}
    for label, (candidate, options) in {
        "wrong_key": (jwt.encode(task["claims"], "other", algorithm="HS256"), {"verify_exp": False}),
        "expired": (token, {}),
        "tampered": (f"{header_b64}.{payload_b64[:-2]}xx.{signature_b64}", {"verify_exp": False}),
        "none_alg": (jwt.encode(task["claims"], None, algorithm="none"), {"verify_exp": False}),
    }.items():
        try:
            jwt.decode(candidate, key, algorithms=["HS256"], audience="compat", options=options)
            refusals[label] = "accepted"
        except jwt.PyJWTError as error:
            refusals[label] = type(error).__name__
    return {
        "token": token,
        "signature_matches_hmac": hmac.compare_digest(expected, signature),
        "header": jwt.get_unverified_header(token),
        "decoded": decoded,
        "refusals": refusals,
    }
