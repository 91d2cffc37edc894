"""ssl for packages in the wasm-agents sandbox: its names, so packages that import them load; TLS itself raises.

Packages probing for TLS features (`from ssl import CERT_REQUIRED, ...`) still find them missing and
take their no-TLS path; a package that only names `SSLContext` or `SSLError` at import time loads.
"""

_UNAVAILABLE = "TLS is not available in the wasm-agents sandbox (its CPython has no OpenSSL)"


class SSLError(OSError):
    """Raised for every use of TLS in the sandbox."""


class CertificateError(SSLError, ValueError):
    pass


SSLCertVerificationError = CertificateError


class SSLContext:
    def __init__(self, *args, **kwargs):
        raise SSLError(_UNAVAILABLE)


class SSLSocket:
    def __init__(self, *args, **kwargs):
        raise SSLError(_UNAVAILABLE)


class SSLObject(SSLSocket):
    pass


def _unavailable(*args, **kwargs):
    raise SSLError(_UNAVAILABLE)


create_default_context = _create_default_https_context = _create_unverified_context = wrap_socket = _unavailable
get_server_certificate = _unavailable
HAS_SNI = HAS_ALPN = False
OPENSSL_VERSION = "none (the wasm-agents sandbox has no TLS)"
