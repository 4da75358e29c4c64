"""Download a user-supplied image URL without letting it reach our own network (design §9).

Framework-free. Defences, in the order a request meets them:
* strict parsing: https only, no credentials, allowed ports only; hosts are read the way
  browsers read them (IDNA mapping, then integer/hex/octal/short IPv4 forms such as 2130706433,
  0x7f000001, 0177.0.0.1, 127.1 become the address they mean), so what we check is what we use;
* the host is resolved ONCE and every answer must be public (IPv4-mapped, NAT64, 6to4 and
  Teredo addresses are judged by the IPv4 address inside them);
* we connect to a checked address, never to the name again, so DNS rebinding cannot move us;
  the name is still sent as Host and used for TLS SNI and certificate verification;
* redirects are followed by hand, every hop checked like the first;
* the body is streamed and dropped once past max_bytes, and one deadline bounds the whole
  fetch, so a slow-drip server cannot hold a worker. (DNS lookups are outside the deadline:
  getaddrinfo cannot be interrupted; the system resolver's own timeouts apply.)

fetch_url() returns the whole (small) body; open_stream() is the same fetch as a context
manager yielding the body chunk by chunk, for large files such as a provider's video.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import httpcore
import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2048
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "Promptreel-image-fetch/1.0"

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


@dataclass(frozen=True)
class FetchedFile:
    content: bytes
    content_type: str | None
    final_url: str


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


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 10.0,
    max_redirects: int = 3,
    resolver: Resolver | None = None,
    allow_http: bool = False,
    verify: bool | str = True,
    allowed_ports: set[int] | None = None,
    ip_check: Callable[[IPAddress], None] = check_ip,
) -> FetchedFile:
    """Fetch url and return its body, refusing anything unsafe with FetchRefused.

    timeout bounds the whole fetch, redirects included. allow_http, allowed_ports (default
    {443}, plus 80 with allow_http) and ip_check exist for tests and local development only.
    verify is True (system and certifi roots), False, or a CA bundle path.
    """
    with open_stream(
        url,
        max_bytes=max_bytes,
        timeout=timeout,
        max_redirects=max_redirects,
        resolver=resolver,
        allow_http=allow_http,
        verify=verify,
        allowed_ports=allowed_ports,
        ip_check=ip_check,
        accept="image/*",
        what="image",
    ) as stream:
        body = b"".join(stream)
        return FetchedFile(content=body, content_type=stream.content_type, final_url=stream.url)


class Stream:
    """An open, checked download: iterate it for the body's chunks (at most max_bytes in all).

    Iterating raises FetchRefused (url_too_large, url_timeout, url_http_error) when the body
    goes past the cap, the total deadline passes or the connection breaks.
    """

    def __init__(
        self, response, target: _Target, headers: dict[str, str], max_bytes: int, what: str
    ):
        self._response = response
        self._what = what
        self._target = target
        self.headers = headers
        self.max_bytes = max_bytes
        self.url = target.url
        content_type = headers.get("content-type")
        if content_type:
            content_type = content_type.split(";")[0].strip().lower() or None
        self.content_type: str | None = content_type
        declared = headers.get("content-length", "").strip()
        self.content_length: int | None = int(declared) if declared.isdigit() else None
        self.received = 0

    def __iter__(self) -> Iterator[bytes]:
        with _mapped_errors(self._target, self._what):
            for chunk in self._response.iter_stream():
                if not chunk:
                    continue
                self.received += len(chunk)
                if self.received > self.max_bytes:
                    raise _too_large(self.max_bytes, self._what)
                yield chunk


@contextmanager
def open_stream(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 10.0,
    max_redirects: int = 3,
    resolver: Resolver | None = None,
    allow_http: bool = False,
    verify: bool | str = True,
    allowed_ports: set[int] | None = None,
    ip_check: Callable[[IPAddress], None] = check_ip,
    accept: str = "*/*",
    what: str = "file",
) -> Iterator[Stream]:
    """Open url with every check of fetch_url and yield a Stream of its body's chunks.

    Nothing is buffered beyond one network read, so a large file (a provider's video) can be
    copied to disk or storage in constant memory. The connection goes to a checked address
    only; redirects are followed by hand and checked hop by hop; a Content-Length over
    max_bytes is refused before the body is read; timeout bounds everything from the first
    connect to the last byte (pass a larger one for large files). `what` names the file in
    the messages ("image", "video").
    """
    deadline = time.monotonic() + timeout
    current = url
    for hop in range(max_redirects + 1):
        try:
            target = _Target.parse(current, allow_http=allow_http, allowed_ports=allowed_ports)
            addresses = _resolve(target, resolver or _system_resolver, ip_check)
        except FetchRefused as exc:
            if hop == 0:
                raise
            raise FetchRefused(exc.code, f"The link redirects to a refused address: {exc}") from exc
        ssl_context = _ssl_context(verify) if target.scheme == "https" else None
        with _get(target, addresses, ssl_context, deadline, accept, what) as (
            status,
            headers,
            response,
        ):
            if status in REDIRECT_STATUSES:
                location = headers.get("location")
                if not location:
                    raise FetchRefused(
                        "url_redirect", f"{target.host} sent a redirect without a destination."
                    )
                current = urljoin(target.url, location)
                continue  # the body of a redirect is never read
            if not 200 <= status < 300:
                raise FetchRefused(
                    "url_http_error",
                    f"{target.host} answered with HTTP status {status} instead of the {what}. "
                    f"Check that the link opens the {what} in a browser.",
                )
            declared = headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes, what)  # refuse before reading a byte of the body
            yield Stream(response, target, headers, max_bytes, what)
            return
    raise FetchRefused(
        "url_redirect",
        f"The link redirects more than {max_redirects} times. Use the {what}'s direct address.",
    )


def check_url(
    url: str,
    *,
    resolver: Resolver | None = None,
    allowed_ports: set[int] | None = None,
    ip_check: Callable[[IPAddress], None] = check_ip,
) -> None:
    """Refuse (FetchRefused) what fetch_url or post would refuse to contact, without
    contacting it: for URLs stored now and used later, such as webhook targets."""
    _checked(url, resolver, allowed_ports, ip_check)


def _checked(url, resolver, allowed_ports, ip_check) -> tuple[_Target, list[IPAddress]]:
    target = _Target.parse(url, allow_http=False, allowed_ports=allowed_ports)
    return target, _resolve(target, resolver or _system_resolver, ip_check)


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float = 10.0,
    resolver: Resolver | None = None,
    allowed_ports: set[int] | None = None,
    verify: bool | str = True,
    ip_check: Callable[[IPAddress], None] = check_ip,
) -> int:
    """POST body to an https URL on a checked public address; return the status code.

    For outgoing webhooks: the same parsing, single resolution and pinned connection as
    fetch_url, so DNS cannot move the request into our network between check and connect.
    Redirects are not followed (a webhook receiver answers, it does not redirect).
    """
    deadline = time.monotonic() + timeout
    target, addresses = _checked(url, resolver, allowed_ports, ip_check)
    request_headers = [
        (b"Host", target.authority.encode("ascii")),
        (b"Content-Length", str(len(body)).encode()),
        (b"Connection", b"close"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
    ]
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), max(timeout, 0.001))
    request_url = httpcore.URL(
        scheme=b"https", host=target.host.encode(), port=target.port,
        target=target.path.encode("ascii"),
    )  # fmt: skip
    backend = _PinnedBackend(addresses, target.port, deadline)
    with (
        _mapped_errors(target, "webhook"),
        httpcore.ConnectionPool(ssl_context=_ssl_context(verify), network_backend=backend) as pool,
    ):
        response = pool.request(
            "POST", request_url, headers=request_headers, content=body,
            extensions={"timeout": timeouts},
        )  # fmt: skip
    return response.status


def _too_large(max_bytes: int, what: str) -> FetchRefused:
    return FetchRefused(
        "url_too_large",
        f"The {what} at this link is larger than the {max_bytes:,}-byte limit. "
        f"Use a smaller {what}.",
    )


@dataclass(frozen=True)
class _Target:
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
    def parse(cls, url: object, *, allow_http: bool, allowed_ports: set[int] | None) -> _Target:
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


def _system_resolver(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _resolve(
    target: _Target, resolver: Resolver, ip_check: Callable[[IPAddress], None]
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


@contextmanager
def _get(target, addresses, ssl_context, deadline, accept: str, what: str):
    """One GET to a pinned address: yields (status, lower-cased headers, open response)."""
    headers = [
        (b"Host", target.authority.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept", accept.encode("ascii")),
        (b"Accept-Encoding", b"identity"),  # never decompress: no zip bombs, honest byte counts
        (b"Connection", b"close"),
    ]
    remaining = max(deadline - time.monotonic(), 0.001)
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), remaining)
    url = httpcore.URL(
        scheme=target.scheme.encode(), host=target.host.encode(), port=target.port,
        target=target.path.encode("ascii"),
    )  # fmt: skip
    backend = _PinnedBackend(addresses, target.port, deadline)
    with ExitStack() as stack:
        # Only our own network calls are translated: an error raised by the caller's code
        # while it holds the stream (a full disk, say) must come out as itself.
        with _mapped_errors(target, what):
            pool = stack.enter_context(
                httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)
            )
            response = stack.enter_context(
                pool.stream("GET", url, headers=headers, extensions={"timeout": timeouts})
            )
        found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        yield response.status, found, response


@contextmanager
def _mapped_errors(target: _Target, what: str):
    """httpcore's and the socket layer's errors become FetchRefused with a plain message."""
    try:
        yield
    except httpcore.TimeoutException:
        raise FetchRefused(
            "url_timeout", f"{target.host} took too long to send the {what}. Try again later."
        ) from None
    except (httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        reason = "could not be reached"
        if isinstance(exc.__context__ or exc.__cause__, ssl.SSLCertVerificationError):
            reason = "has an HTTPS certificate that could not be verified"
        raise FetchRefused("url_http_error", f"{target.host} {reason}.") from exc


@functools.cache
def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """One context per setting and process: loading a CA bundle costs tens of milliseconds.

    Sharing is safe: httpcore only ever sets the same ALPN list ("http/1.1") on it.
    """
    if verify is True:
        return httpcore.default_ssl_context()
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=verify)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the pre-checked addresses, whatever host httpcore asks for.

    httpcore passes the URL's host name to connect_tcp; handing that to the socket layer would
    resolve it a second time, which is exactly the rebinding hole. TLS still gets the host name
    (httpcore passes it as server_hostname to start_tls), so SNI and certificates are right.
    """

    def __init__(self, addresses: Iterable[IPAddress], port: int, deadline: float) -> None:
        self._addresses = list(addresses)
        self._port = port
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if port != self._port:
            raise httpcore.ConnectError("unexpected port")
        error: Exception = httpcore.ConnectError("no address to connect to")
        # Try each checked address in turn (e.g. IPv6 first, then IPv4), never a new lookup.
        for address in self._addresses:
            budget = _budget(self._deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, timeout=budget, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise error


class _DeadlineStream(httpcore.NetworkStream):
    """Shrinks every socket timeout to what is left of the fetch's total deadline.

    A per-read timeout alone lets a server that drips one byte just inside it go on forever.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes, timeout=None):
        budget = _budget(self._deadline, timeout, httpcore.ReadTimeout)
        return self._stream.read(max_bytes, budget)

    def write(self, buffer, timeout=None):
        self._stream.write(buffer, _budget(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self):
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        budget = _budget(self._deadline, timeout, httpcore.ConnectTimeout)
        tls = self._stream.start_tls(ssl_context, server_hostname, budget)
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


def _budget(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the total time limit for the download has passed")
    return remaining if timeout is None else min(timeout, remaining)
