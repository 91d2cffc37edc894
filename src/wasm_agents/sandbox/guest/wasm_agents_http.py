"""HTTP for agent code: each request leaves the sandbox as one host call, and the host decides.

The host makes a request only where the agent's [network] allow list says, to an address it checked; the
guest has no sockets. `install` plugs this into http.client (and so urllib.request), urllib3 (and so requests)
and httpx as each is first imported (see wasm_agents_sandbox), so agent code changes nothing. A refused
request raises the error each library's users already catch; redirects come back as they are, so the
library follows them through the host and every hop is checked again.
"""

import http.client
import io
import json
import socket

import wit_world
from componentize_py_types import Err

__all__ = ["Failed", "NoNetwork", "Refused", "TimedOut", "exchange", "install"]


class Refused(ConnectionRefusedError):
    """The host refused the request: the destination is not allowed, or the request or its answer broke a rule."""


class Failed(ConnectionError):
    """The host could not complete the request: no connection, a TLS failure, a broken answer."""


class NoNetwork(socket.gaierror):
    """The agent has no [network] section: as before it had one, no name is resolved, and the message says how to get one."""

    def __init__(self, message: str) -> None:
        super().__init__(socket.EAI_FAIL, f"Non-recoverable error: no name resolution in the wasm-agents sandbox: {message}")


class TimedOut(TimeoutError):
    """No complete answer by the request's timeout or the agent's deadline."""

    def __init__(self, message: str, connecting: bool) -> None:
        super().__init__(message)
        self.connecting = connecting


NOT_MADE = (Refused, Failed, NoNetwork)  # the request was not made, or no answer came: a library's connection error


def exchange(method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, timeout: float | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
    """Have the host make one request; return its status, reason, headers and body (still content-encoded)."""
    # A JSON line, then the body's bytes as latin-1 characters, each way: no base64, no escaping of the body.
    head = json.dumps({"method": method, "url": url, "headers": [[str(name), str(value)] for name, value in headers], "timeout": timeout})
    try:
        answer = wit_world.host_call("http", f"{head}\n{(body or b'').decode('latin-1')}")
    except Err as refusal:
        error = json.loads(refusal.value)
        message = error.get("message", "the request failed")
        if error.get("type") == "NetworkTimeout":
            raise TimedOut(message, error.get("reason") == "connect-timeout") from None
        if error.get("reason") == "no-network":
            raise NoNetwork(message) from None
        raise (Failed if error.get("type") == "NetworkFailed" else Refused)(message) from None
    head, _, content = answer.partition("\n")
    fields = json.loads(head)
    return fields["status"], fields["reason"], [(name, value) for name, value in fields["headers"]], content.encode("latin-1")


def seconds(timeout) -> float | None:
    """A timeout in seconds, from a number, a (connect, read) pair, urllib3's Timeout or httpx's dict; None when unset."""
    if isinstance(timeout, bool) or timeout is None:
        return None
    if isinstance(timeout, (int, float)):
        return float(timeout)
    if isinstance(timeout, dict):
        timeout = (timeout.get("connect"), timeout.get("read"))
    elif not isinstance(timeout, tuple):
        total = getattr(timeout, "total", None)
        if isinstance(total, (int, float)):
            return float(total)
        timeout = (getattr(timeout, "_connect", None), getattr(timeout, "_read", None))
    parts = [part for part in timeout if isinstance(part, (int, float)) and not isinstance(part, bool)]
    return float(sum(parts)) if parts else None


def answer_bytes(method: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The answer as HTTP/1.1 bytes for http.client to parse: framed by its length, and the connection closed after it."""
    keep_length = not body and (method == "HEAD" or status in (204, 304) or status < 200)  # a length that describes no body here
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers if keep_length or name.lower() != "content-length"]
    if not keep_length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body


class _Wire:
    """A connected socket's stand-in, holding one answer to read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BytesIO:
        return io.BytesIO(self._data)


def parsed_answer(method: str, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> http.client.HTTPResponse:
    """The answer as http.client's own response object, its headers read: what urllib3 wraps."""
    response = http.client.HTTPResponse(_Wire(answer_bytes(method, status, reason, headers, body)), method=method)
    response.begin()
    return response


def _authority(scheme: str, host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return host if port in (None, {"http": 80, "https": 443}[scheme]) else f"{host}:{port}"


class _HostSocket:
    """What http.client writes a request to: once the request is complete it goes to the host as one call, and
    the answer is what http.client then reads."""

    def __init__(self, connection: http.client.HTTPConnection, scheme: str) -> None:
        self._connection = connection
        self._scheme = scheme
        self._sent = bytearray()
        self._answer: bytes | None = None

    def sendall(self, data) -> None:
        if self._answer is not None:  # a new request on a kept connection
            self._sent, self._answer = bytearray(), None
        self._sent += data
        if (request := _complete_request(self._sent)) is not None:
            method, target, headers, body = request
            url = target if target.startswith(("http://", "https://")) else f"{self._scheme}://{_authority(self._scheme, self._connection.host, self._connection.port)}{target}"
            answer = exchange(method, url, headers, body, seconds(self._connection.timeout))
            self._answer = answer_bytes(method, *answer)

    def send(self, data) -> int:
        self.sendall(data)
        return len(data)

    def makefile(self, mode: str = "rb", *args, **kwargs) -> io.BytesIO:
        if self._answer is None:
            raise Failed("the request was not complete when its answer was read")
        return io.BytesIO(self._answer)

    def settimeout(self, timeout) -> None:
        pass

    def setsockopt(self, *args) -> None:
        pass

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        pass


def _complete_request(sent: bytearray) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    """The method, target, headers and body of the request in `sent`, once all of it is there; else None."""
    end = sent.find(b"\r\n\r\n")
    if end < 0:
        return None
    request_line, *lines = bytes(sent[:end]).decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:  # a value continued on the next line (http.client joins values so)
            headers[-1] = (headers[-1][0], f"{headers[-1][1]} {line.strip()}")
        else:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    fields = {name.lower(): value for name, value in headers}
    rest = bytes(sent[end + 4:])
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = _dechunked(rest)
        if body is None:
            return None
    else:
        length = int(fields.get("content-length", "0") or 0)
        if len(rest) < length:
            return None
        body = rest[:length]
    return method, target, headers, body


def _dechunked(data: bytes) -> bytes | None:
    """The body of a chunked request, once its last chunk is there; else None."""
    parts, position = [], 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(data[position:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            return b"".join(parts) if data.find(b"\r\n", line_end + 2) >= 0 else None
        if len(data) < line_end + 2 + size + 2:
            return None
        parts.append(data[line_end + 2:line_end + 2 + size])
        position = line_end + 2 + size + 2


def _install_http_client(client) -> None:
    """HTTP and HTTPS connections that talk to the host: urllib.request, http.client and what builds on them."""

    def connect(self) -> None:
        self.sock = _HostSocket(self, "https" if isinstance(self, client.HTTPSConnection) else "http")

    class HTTPSConnection(client.HTTPConnection):
        """HTTPS through the host, which verifies TLS itself (a `context` given here is not used)."""

        default_port = client.HTTPS_PORT

        def __init__(self, host, port=None, *, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, context=None, blocksize=8192):
            super().__init__(host, port, timeout, source_address, blocksize)

    HTTPSConnection.__module__ = client.__name__
    client.HTTPSConnection = HTTPSConnection
    if "HTTPSConnection" not in client.__all__:
        client.__all__.append("HTTPSConnection")
    client.HTTPConnection.connect = connect
    client._create_https_context = lambda http_version: None  # urllib.request asks for one; the host has its own


def _install_urllib3(connectionpool) -> None:
    """Connection pools whose requests go to the host: urllib3, and requests, which sends through it."""
    from urllib3._collections import HTTPHeaderDict
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
    from urllib3.response import HTTPResponse

    def urlopen(self, method, url, body=None, headers=None, retries=None, redirect=True, assert_same_host=True, timeout=None,
                pool_timeout=None, release_conn=None, chunked=False, body_pos=None, **response_kw):
        full = url if url.startswith(("http://", "https://")) else f"{self.scheme}://{_authority(self.scheme, self.host, self.port)}{url}"
        limit = seconds(timeout) if seconds(timeout) is not None else seconds(self.timeout)
        try:
            answer = exchange(method, full, list((headers or self.headers or {}).items()), _body_bytes(body), limit)
        except TimedOut as error:
            if error.connecting:
                raise MaxRetryError(self, url, ConnectTimeoutError(self, str(error))) from None
            raise ReadTimeoutError(self, url, str(error)) from None
        except NOT_MADE as error:
            raise MaxRetryError(self, url, NewConnectionError(self, f"Failed to establish a new connection: {error}")) from None
        raw = parsed_answer(method, *answer)
        fields = HTTPHeaderDict()
        for name, value in raw.msg.items():
            fields.add(name, value)
        return HTTPResponse(
            body=raw, headers=fields, status=raw.status, version=raw.version, reason=raw.reason, original_response=raw,
            preload_content=response_kw.get("preload_content", True), decode_content=response_kw.get("decode_content", True),
            retries=retries, request_method=method, request_url=url,
        )

    connectionpool.HTTPConnectionPool.urlopen = urlopen


def _body_bytes(body) -> bytes | None:
    """A request body as bytes, from what urllib3 accepts: bytes, str, a file or an iterable of chunks."""
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        return None if body is None else bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)


def _install_httpx(default) -> None:
    """httpx's default transport, sending through the host; it keeps no connection pool, so it needs no TLS context."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def handle_request(self, request):
        import httpx

        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        try:
            status, reason, answer_headers, body = exchange(request.method, str(request.url), headers, request.read(), seconds(request.extensions.get("timeout")))
        except TimedOut as error:
            raise (httpx.ConnectTimeout if error.connecting else httpx.ReadTimeout)(str(error), request=request) from None
        except NOT_MADE as error:
            raise httpx.ConnectError(str(error), request=request) from None
        return httpx.Response(
            status, headers=answer_headers, stream=httpx.ByteStream(body), request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1", "replace")},
        )

    transport = default.HTTPTransport
    transport.__init__ = __init__
    transport.handle_request = handle_request
    transport.__enter__ = lambda self: self
    transport.__exit__ = transport.close = lambda self, *args: None


INSTALLERS = {"http.client": _install_http_client, "urllib3.connectionpool": _install_urllib3, "httpx._transports.default": _install_httpx}


def install(module) -> None:
    """Make `module` (one of INSTALLERS) send its requests through the host."""
    INSTALLERS[module.__name__](module)
