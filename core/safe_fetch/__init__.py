"""Download a user-supplied image URL without letting it reach our own network .

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

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin

import httpcore

from .addresses import (
    FetchRefused,
    IPAddress,
    Resolver,
    Target,
    check_ip,
    resolve,
    system_resolver,
)
from .transport import REDIRECT_STATUSES, PinnedBackend, http_get, make_ssl_context, mapped_errors

__all__ = [
    "FetchRefused",
    "FetchedFile",
    "Stream",
    "check_ip",
    "check_url",
    "fetch_url",
    "open_stream",
    "post",
]


@dataclass(frozen=True)
class FetchedFile:
    content: bytes
    content_type: str | None
    final_url: str


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
        self, response, target: Target, headers: dict[str, str], max_bytes: int, what: str
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
        with mapped_errors(self._target, self._what):
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
    keep_alive: bool = False,
) -> Iterator[Stream]:
    """Open url with every check of fetch_url and yield a Stream of its body's chunks.

    Nothing is buffered beyond one network read, so a large file (a provider's video) can be
    copied to disk or storage in constant memory. The connection goes to a checked address
    only; redirects are followed by hand and checked hop by hop; a Content-Length over
    max_bytes is refused before the body is read; timeout bounds everything from the first
    connect to the last byte (pass a larger one for large files). `what` names the file in
    the messages ("image", "video"). keep_alive leaves the connection open for the next
    fetch from the same host and checked address (transport.http_get): for a provider's CDN,
    never for a link a user gave.
    """
    deadline = time.monotonic() + timeout
    current = url
    for hop in range(max_redirects + 1):
        try:
            target = Target.parse(current, allow_http=allow_http, allowed_ports=allowed_ports)
            addresses = resolve(target, resolver or system_resolver, ip_check)
        except FetchRefused as exc:
            if hop == 0:
                raise
            raise FetchRefused(exc.code, f"The link redirects to a refused address: {exc}") from exc
        ssl_context = make_ssl_context(verify) if target.scheme == "https" else None
        with http_get(
            target, addresses, ssl_context, deadline, accept, what, keep_alive=keep_alive
        ) as (
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
    allow_http: bool = False,
) -> None:
    """Refuse (FetchRefused) what fetch_url or post would refuse to contact, without
    contacting it: for URLs stored now and used later, such as webhook targets."""
    _checked(url, resolver, allowed_ports, ip_check, allow_http)


def _checked(
    url, resolver, allowed_ports, ip_check, allow_http=False
) -> tuple[Target, list[IPAddress]]:
    target = Target.parse(url, allow_http=allow_http, allowed_ports=allowed_ports)
    return target, resolve(target, resolver or system_resolver, ip_check)


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
    allow_http: bool = False,
) -> int:
    """POST body to an https URL on a checked public address; return the status code.
    allow_http (with allowed_ports and ip_check) is for local development only
    (api.webhooks' DEBUG loopback targets).

    For outgoing webhooks: the same parsing, single resolution and pinned connection as
    fetch_url, so DNS cannot move the request into our network between check and connect.
    Redirects are not followed (a webhook receiver answers, it does not redirect).
    """
    deadline = time.monotonic() + timeout
    target, addresses = _checked(url, resolver, allowed_ports, ip_check, allow_http)
    request_headers = [
        (b"Host", target.authority.encode("ascii")),
        (b"Content-Length", str(len(body)).encode()),
        (b"Connection", b"close"),
        *((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
    ]
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), max(timeout, 0.001))
    request_url = httpcore.URL(
        scheme=target.scheme.encode(), host=target.host.encode(), port=target.port,
        target=target.path.encode("ascii"),
    )  # fmt: skip
    backend = PinnedBackend(addresses, target.port, deadline)
    with (
        mapped_errors(target, "webhook"),
        httpcore.ConnectionPool(
            ssl_context=make_ssl_context(verify) if target.scheme == "https" else None,
            network_backend=backend,
        ) as pool,
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
