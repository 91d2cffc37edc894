"""One HTTP exchange the host makes for an agent: the request is checked against the agent's allow list, the
address it connects to is the one it checked, and the whole exchange ends by the agent's deadline.

Written on http.client rather than urllib3 or requests: the host must connect to an address it resolved and
checked itself, verify TLS for the name, follow no redirect, use no proxy or cookie, and stop at a hard
deadline covering the lookup, the connection and every byte of the answer, which those libraries do not bound.
"""

import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as LookupTimeout
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from wasm_agents.errors import ErrorKind
from wasm_agents.network.allow import DEFAULT_PORTS, AllowList, IPAddress, literal_address, normal_host, special_address
from wasm_agents.project import Limits, Network
from wasm_agents.sandbox import guest_json
from wasm_agents.sandbox.guest_json import utf8_size

MAX_HEADERS = 100
MAX_HEADER_BYTES = 64 * 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_PATH = re.compile(r"[\x21-\x7e]*\Z")  # visible ASCII: a client percent-encodes the rest
# Framing and connection management are the host's: the guest's values for these are dropped.
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"})
_lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="wasm-agents-dns")  # getaddrinfo has no timeout of its own


class NetworkError(Exception):
    """A request the host refused or could not complete: its kind, a short reason for events, and a message for the agent."""

    def __init__(self, kind: ErrorKind, reason: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where a request goes: scheme, host (as `normal_host` gives it), port, and path with its query."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def shown(self) -> str:
        """host:port, as messages name a destination."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        """The Host header's value."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Request:
    """An agent's request, as it came out of the sandbox and was checked for form."""

    method: str
    target: Target
    headers: tuple[tuple[str, str], ...]
    body: bytes
    timeout_s: float | None


@dataclass(frozen=True)
class Response:
    """The answer, as it came off the wire: the body still in its content encoding, without transfer framing."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_wire(self) -> str:
        """Return the answer as the guest reads it: a JSON line of status, reason and headers, then the body's bytes as latin-1.

        Not base64 in JSON: a megabyte's answer crosses into the guest ~3× faster so (bench/network.py).
        """
        head = json.dumps({"status": self.status, "reason": self.reason, "headers": [list(header) for header in self.headers]})
        return f"{head}\n{self.body.decode('latin-1')}"


def read_request(payload: str, limits: Limits) -> Request:
    """Return the request a guest sent, refusing anything malformed.

    The payload is a JSON line {"method", "url", "headers", "timeout"}, then the body's bytes as latin-1.
    """
    if (size := utf8_size(payload)) > limits.payload_limit:
        raise _bad(f"{size} bytes exceed {limits.payload_limit} ([limits] payload_bytes in agent.toml)")
    head, _, body = payload.partition("\n")
    try:
        data = guest_json.loads(head, max_bytes=limits.payload_limit, max_depth=limits.json_depth, max_items=limits.json_items)
    except guest_json.Refused as refused:
        raise _bad(f"{refused}{refused.hint('payload_bytes')}") from None
    except ValueError as error:
        raise _bad(f"not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("method"), str) or not isinstance(data.get("url"), str):
        raise _bad("expected an object with a method and a url")
    method, headers, timeout = data["method"], data.get("headers") or [], data.get("timeout")
    if not _TOKEN.match(method) or len(method) > 32:
        raise _bad(f"invalid method {method[:40]!r}")
    target = _target(data["url"])
    if not isinstance(headers, list) or not all(isinstance(h, list) and len(h) == 2 and all(isinstance(p, str) for p in h) for h in headers):
        raise _bad("headers must be a list of [name, value] strings")
    if len(headers) > MAX_HEADERS or sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        raise _bad(f"more than {MAX_HEADERS} headers or {MAX_HEADER_BYTES} bytes of them")
    kept = []
    for name, value in headers:
        if not _TOKEN.match(name):
            raise _bad(f"invalid header name {name[:40]!r}")
        if any(character in value for character in "\r\n\0"):
            raise _bad(f"header {name!r} has a line break or NUL in its value (header injection)")
        lowered = name.lower()
        if lowered == "host":
            if value.strip().lower() != target.authority:
                raise _bad(f"the Host header {value[:100]!r} differs from the URL's host {target.authority!r}")
        elif lowered not in _HOP_BY_HOP:
            kept.append((name, value))
    try:
        content = body.encode("latin-1")
    except UnicodeEncodeError:
        raise _bad("the body must be bytes as latin-1 characters") from None
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise _bad(f"timeout must be a number of seconds more than 0, got {timeout!r}")
    return Request(method, target, tuple(kept), content, timeout)


def _target(url: str) -> Target:
    """Return where `url` points, refusing what the host never sends: other schemes, credentials, control characters."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _bad(f"invalid URL {url[:200]!r}: {error}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise _bad(f"only http and https URLs are supported, got {url[:200]!r}")
    if parts.username is not None or parts.password is not None:
        raise _bad("credentials in the URL are not sent: use an Authorization header")
    try:
        host = normal_host(parts.hostname or "")
    except ValueError as error:
        raise _bad(f"invalid URL {url[:200]!r}: {error}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not _PATH.match(path):
        raise _bad(f"the URL's path has spaces, control or non-ASCII characters: {path[:200]!r}")
    return Target(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], path)


def _bad(message: str) -> NetworkError:
    return NetworkError(ErrorKind.BAD_REQUEST, "malformed", f"refused request: {message}")


class Egress:
    """One invocation's way out: the agent's allow list and caps, and the requests it has made."""

    def __init__(self, agent: str, folder: str, network: Network | None) -> None:
        self.agent = agent
        self.folder = folder
        self.network = network
        self.allow = _allow_list(network.allow) if network else None
        self.requests = 0

    def fetch(self, request: Request, deadline: float) -> Response:
        """Make `request` for the agent, by its deadline; raise NetworkError when refused or not completed."""
        target = request.target
        if self.network is None:
            raise NetworkError(
                ErrorKind.NETWORK_REFUSED, "no-network",
                f"agent '{self.agent}' has no network access: add [network] allow = [\"{target.shown}\"] to {self.folder}/agent.toml",
            )
        self.requests += 1
        if self.requests > self.network.max_requests:
            raise NetworkError(
                ErrorKind.NETWORK_REFUSED, "max-requests",
                f"agent '{self.agent}' made more than {self.network.max_requests} requests in one invocation "
                f"([network] max_requests in {self.folder}/agent.toml)",
            )
        rule = self.allow.rule_for(target.scheme, target.host, target.port)
        if rule is None:
            raise NetworkError(
                ErrorKind.NETWORK_REFUSED, "not-allowed", f"{target.shown} is not in the network allow list of agent '{self.agent}'"
            )
        start = time.monotonic()
        bounds = [(start + self.network.timeout_s, f"[network] timeout_s in {self.folder}/agent.toml")]
        if request.timeout_s is not None:
            bounds.append((start + request.timeout_s, "the request's own timeout"))
        bounds.append((deadline, f"the agent's wall time, [limits] wall_time_s in {self.folder}/agent.toml"))
        until, bound = min(bounds)
        addresses = _addresses(target, until)
        return _exchange(request, addresses, until, bound, self.network.max_response_bytes, self.folder)


@lru_cache(maxsize=256)
def _allow_list(entries: tuple[str, ...]) -> AllowList:
    return AllowList(entries)


def _addresses(target: Target, until: float) -> list[IPAddress]:
    """Resolve the target's host by the host's resolver and check every address it gives.

    An IP literal is used as it is: only an entry naming that IP literally allows it (see Rule.matches).
    """
    if (address := literal_address(target.host)) is not None:
        return [address]
    lookup = _lookups.submit(socket.getaddrinfo, target.host, target.port, type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout=max(0.0, until - time.monotonic()))
    except LookupTimeout:
        raise NetworkError(ErrorKind.NETWORK_TIMEOUT, "connect-timeout", f"looking up {target.host} did not finish in time") from None
    except OSError as error:
        raise NetworkError(ErrorKind.NETWORK_FAILED, "lookup", f"cannot resolve {target.host}: {error}") from None
    addresses = list(dict.fromkeys(literal_address(entry[4][0].split("%")[0]) for entry in found))
    for address in addresses:
        if kind := special_address(address):
            raise NetworkError(
                ErrorKind.NETWORK_REFUSED, "special-address",
                f"{target.host} resolves to {address}, {kind}: only an allow entry naming {address} itself reaches it",
            )
    return addresses


@lru_cache(maxsize=4)
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """The host's default verification (SSL_CERT_FILE and SSL_CERT_DIR apply, as for every OpenSSL client)."""
    return ssl.create_default_context()


def _exchange(request: Request, addresses: list[IPAddress], until: float, bound: str, most: int, folder: str) -> Response:
    """Connect to the first address that answers, send the request, read the answer; all by `until`."""
    target = request.target
    watched: list[socket.socket] = []
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for sock in watched:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(max(0.0, until - time.monotonic()), expire)
    timer.daemon = True
    timer.start()
    phase = "connecting"
    try:
        sock = _connect(addresses, target, until, watched)
        if target.scheme == "https":
            phase = "negotiating TLS"
            sock.settimeout(max(0.001, until - time.monotonic()))
            sock = _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")).wrap_socket(sock, server_hostname=target.host)
            watched.append(sock)
        connection = http.client.HTTPConnection(target.host, target.port)
        connection.sock = sock
        try:
            phase = "sending the request"
            sock.settimeout(max(0.001, until - time.monotonic()))
            connection.putrequest(request.method, target.path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", target.authority)
            for name, value in request.headers:
                connection.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.putheader("Connection", "close")
            connection.endheaders(request.body or None)
            phase = "waiting for the answer"
            sock.settimeout(max(0.001, until - time.monotonic()))
            answer = connection.getresponse()
            phase = "reading the answer"
            body = _read_body(answer, most, target, folder)
            headers = tuple((name, value) for name, value in answer.getheaders() if name.lower() not in ("transfer-encoding", "connection", "keep-alive"))
            return Response(answer.status, answer.reason, headers, body)
        finally:
            connection.close()
    except NetworkError:
        raise
    except ssl.SSLCertVerificationError as error:
        raise NetworkError(ErrorKind.NETWORK_FAILED, "tls", f"TLS with {target.shown} failed: certificate verify failed: {error.verify_message or error}") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        if expired.is_set() or isinstance(error, TimeoutError) or time.monotonic() >= until:
            reason = "connect-timeout" if phase in ("connecting", "negotiating TLS") else "read-timeout"
            raise NetworkError(
                ErrorKind.NETWORK_TIMEOUT, reason, f"{target.shown} did not answer in time ({phase}; bounded by {bound})"
            ) from None
        raise NetworkError(ErrorKind.NETWORK_FAILED, "connection", f"{phase} {target.shown} failed: {type(error).__name__}: {error}") from None
    finally:
        timer.cancel()
        for sock in watched:
            sock.close()


def _connect(addresses: list[IPAddress], target: Target, until: float, watched: list[socket.socket]) -> socket.socket:
    """Return a socket connected to the first of `addresses` that accepts, watched for the deadline."""
    failure: OSError | None = None
    for address in addresses:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        watched.append(sock)
        sock.settimeout(max(0.001, until - time.monotonic()))
        try:
            sock.connect((str(address), target.port))
            return sock
        except OSError as error:
            failure = error
            if isinstance(error, TimeoutError):
                raise
    raise failure or OSError(f"no address for {target.host}")


def _read_body(answer: http.client.HTTPResponse, most: int, target: Target, folder: str) -> bytes:
    """Read the whole body, refusing it once it passes `most` bytes (the deadline's watchdog bounds the time)."""
    parts: list[bytes] = []
    size = 0
    while True:
        part = answer.read(min(65536, most + 1 - size))
        if not part:
            return b"".join(parts)
        size += len(part)
        if size > most:
            raise NetworkError(
                ErrorKind.NETWORK_REFUSED, "too-large",
                f"the answer from {target.shown} is larger than {most} bytes ([network] max_response_bytes in {folder}/agent.toml)",
            )
        parts.append(part)
