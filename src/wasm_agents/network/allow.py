"""Where an agent may connect: the entries of its [network] allow list, and the addresses no name may lead to."""

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud providers' instance metadata services: credentials of the machine the host runs on.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "fd00:ec2::23", "100.100.100.200")
)
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*\Z")
_ENTRY = re.compile(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[^\]]*\]|[^:/\[\]]+)(?::(?P<port>\d{1,5}))?\Z")


@dataclass(frozen=True)
class Rule:
    """One allow entry: a scheme (or both), a host name, `*.` and a domain, or an IP literal, and a port (or the scheme's)."""

    entry: str
    scheme: str | None
    host: str
    port: int | None
    wildcard: bool = False  # an IP literal is never one: an entry naming an IP allows that address, loopback included

    def matches(self, scheme: str, host: str, port: int) -> bool:
        """True when a request to `scheme`://`host`:`port` (host as `normal_host` gives it) is allowed by this entry."""
        if self.scheme not in (None, scheme) or port != (self.port or DEFAULT_PORTS[scheme]):
            return False
        if self.wildcard:
            return host.endswith("." + self.host) and literal_address(host) is None
        return host == self.host


def parse_rule(entry: str) -> Rule:
    """Return the rule of one allow entry (`host[:port]`, `*.domain[:port]`, optionally `http://` or `https://` first)."""
    found = _ENTRY.match(entry.strip().lower())
    if found is None or (found["scheme"] and found["scheme"] not in DEFAULT_PORTS):
        raise ValueError("expected host[:port], *.domain[:port] or [IPv6][:port], optionally after http:// or https://")
    port = None if found["port"] is None else int(found["port"])
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    host = found["host"]
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
        if literal_address(host) is not None or "." not in host:
            raise ValueError("a wildcard entry needs a domain of at least two labels after '*.', like *.example.org")
    try:
        host = normal_host(host)
    except ValueError:
        raise ValueError("not a valid host name or IP address") from None
    return Rule(entry, found["scheme"], host, port, wildcard)


def normal_host(host: str) -> str:
    """Return `host` as requests and rules are compared: lowercase, IDNA-encoded, no trailing dot, IPs in short form.

    Raises ValueError for anything that is neither a host name nor an IP literal.
    """
    host = host.lower().removesuffix(".")
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    if (address := literal_address(host)) is not None:
        return str(address)
    try:
        encoded = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise ValueError(f"{host!r} is not a valid host name") from None
    if not _HOST_NAME.match(encoded) or len(encoded) > 253:
        raise ValueError(f"{host!r} is not a valid host name")
    return encoded


def literal_address(host: str) -> IPAddress | None:
    """Return the address `host` names literally (IPv4 dotted quad, or IPv6 with or without brackets), else None."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def special_address(address: IPAddress) -> str | None:
    """Why `address` is not on the public internet (e.g. 'a loopback address'), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo and address.teredo[1])
        if embedded is not None:
            return special_address(embedded)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind, flag in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
        ("a non-public", not address.is_global),
    ):
        if flag:
            return f"{kind} address"
    return None


class AllowList:
    """The rules of one agent's [network] allow list."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.rules = tuple(parse_rule(entry) for entry in entries)

    def rule_for(self, scheme: str, host: str, port: int) -> Rule | None:
        """Return the first rule allowing `scheme`://`host`:`port`, or None."""
        return next((rule for rule in self.rules if rule.matches(scheme, host, port)), None)
