"""Which addresses a fetch may reach: URL parsing the way browsers read hosts, the public-address
check, and resolving a name once (see core/safe_fetch/__init__.py for the whole defence)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


MAX_URL_LENGTH = 2048


# Checked in addition to Python's is_global & co., whose tables differ between Python releases.
_BLOCKED = [
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        # Azure's wire server / metadata endpoint sits on a public-looking address.
        "168.63.129.16/32",
        "::/8", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
]  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchRefused(ValueError):
    """The URL cannot be fetched. str(exc) is user-facing and says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_ip(ip: IPAddress) -> None:
    """Refuse any address that is not plainly on the public internet."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            _refuse_ip(ip)
        # These forms are just another spelling of an IPv4 address: judge that address.
        inner = ip.ipv4_mapped or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
        )
        if inner is not None:
            if not _is_public(inner):
                _refuse_ip(ip)
            return
        # Tunnels that deliver to an embedded IPv4 address: judge both ends.
        for embedded in (ip.sixtofour, *(ip.teredo or ())):
            if embedded is not None and not _is_public(embedded):
                _refuse_ip(ip)
    if not _is_public(ip):
        _refuse_ip(ip)


def _is_public(ip: IPAddress) -> bool:
    local = (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    )  # fmt: skip
    blocked = any(ip.version == net.version and ip in net for net in _BLOCKED)
    return ip.is_global and not local and not blocked


def _refuse_ip(ip: IPAddress) -> None:
    raise FetchRefused(
        "url_private_address",
        f"{ip} is a private, local or reserved network address; "
        "only images on the public internet can be fetched.",
    )


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII, lower case, no brackets, no trailing dot: used for SNI and certificates
    port: int
    path: str  # path and query, percent-encoded
    literal: IPAddress | None  # set when the URL names an address rather than a host name

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"https": 443, "http": 80}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"

    @classmethod
    def parse(cls, url: object, *, allow_http: bool, allowed_ports: set[int] | None) -> Target:
        if not isinstance(url, str) or not url.strip():
            raise FetchRefused("url_invalid", "Enter the image's web address (https://…).")
        url = url.strip()
        if len(url) > MAX_URL_LENGTH:
            raise FetchRefused(
                "url_invalid", f"The link is longer than {MAX_URL_LENGTH} characters."
            )
        # Browsers read "\" as "/" and drop tabs and newlines; refusing them avoids any
        # disagreement about which host a URL names.
        if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" for ch in url):
            raise FetchRefused("url_invalid", "The link contains spaces or invalid characters.")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise FetchRefused("url_invalid", "The link is not a valid web address.") from None

        schemes = {"https", "http"} if allow_http else {"https"}
        scheme = parts.scheme.lower()
        if scheme not in schemes or not url[len(scheme) :].startswith("://"):
            hint = "change http:// to https://" if scheme == "http" else "use an https:// link"
            raise FetchRefused("url_scheme", f"Only https:// links to images are accepted; {hint}.")
        if "@" in parts.netloc:
            raise FetchRefused("url_invalid", "The link must not contain a user name or password.")
        if port is None:
            port = 443 if scheme == "https" else 80
        default_ports = {443, 80} if allow_http else {443}
        allowed = default_ports if allowed_ports is None else allowed_ports
        if port not in allowed:
            raise FetchRefused(
                "url_invalid", f"Port {port} is not allowed; remove “:{port}” from the link."
            )

        host, literal = _parse_host(parts.hostname or "", bracketed="[" in parts.netloc)
        path = quote(parts.path or "/", safe="/%!$&'()*+,;=:@-._~")
        if parts.query:
            path += "?" + quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
        return cls(scheme=scheme, host=host, port=port, path=path, literal=literal)


def _parse_host(host: str, *, bracketed: bool) -> tuple[str, IPAddress | None]:
    invalid = FetchRefused("url_invalid", "The link's server name is not valid.")
    if bracketed:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise invalid from None
        return str(ip), ip
    try:
        # UTS 46 mapping first, as browsers do: "１２７.０.０.１" is 127.0.0.1 once mapped.
        host = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise invalid from None
    host = host.lower()
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot is allowed ("example.com.")
    if labels and (labels[-1].isdigit() or _ipv4_number(labels[-1]) is not None):
        # A host ending in a number is an IPv4 address in some spelling, or nothing at all.
        ip = _parse_ipv4(labels)
        if ip is None:
            raise invalid
        return str(ip), ip
    if len(labels) < 2 or len(".".join(labels)) > 253:
        raise FetchRefused("url_invalid", "The link needs a full server name, like example.com.")
    allowed_chars = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    if any(not 0 < len(label) < 64 or not set(label) <= allowed_chars for label in labels):
        raise invalid
    if labels[-1] == "localhost":
        raise FetchRefused("url_private_address", "Links to localhost cannot be fetched.")
    return ".".join(labels), None


def _ipv4_number(part: str) -> int | None:
    """One dotted part as inet_aton and browsers read it: 0x.. hex, 0.. octal, else decimal."""
    base = 10
    if part[:2] in ("0x", "0X"):
        part, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    if not part:
        return 0 if base == 16 else None
    digits = "0123456789abcdef"[:base]
    if not set(part.lower()) <= set(digits):
        return None
    return int(part, base)


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
    numbers = [_ipv4_number(label) for label in labels]
    if not 1 <= len(numbers) <= 4 or any(n is None for n in numbers):
        return None
    *leading, last = numbers
    # "127.1" means 127.0.0.1: the last part fills all the remaining bytes.
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def system_resolver(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve(
    target: Target, resolver: Resolver, ip_check: Callable[[IPAddress], None]
) -> list[IPAddress]:
    """Resolve once and check every answer: one private answer refuses the whole host."""
    if target.literal is not None:
        ip_check(target.literal)
        return [target.literal]
    unresolvable = FetchRefused(
        "url_unresolvable", f"Could not find the server {target.host}. Check the link."
    )
    try:
        answers = resolver(target.host, target.port)
        addresses = list(dict.fromkeys(ipaddress.ip_address(answer) for answer in answers))
    except (OSError, UnicodeError, ValueError):
        raise unresolvable from None
    if not addresses:
        raise unresolvable
    for address in addresses:
        try:
            ip_check(address)
        except FetchRefused as exc:
            # Do not echo the address: that would map our internal DNS for the user.
            raise FetchRefused(
                exc.code,
                f"{target.host} points to a private, local or reserved network address; "
                "only images on the public internet can be fetched.",
            ) from exc
    return addresses
