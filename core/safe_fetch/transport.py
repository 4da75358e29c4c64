"""The HTTP side of a guarded fetch: connect only to an address that was checked (so DNS
rebinding cannot move us), keep the name for Host, SNI and certificates, and bound every read by
one deadline."""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager

import httpcore

from .addresses import FetchRefused, IPAddress, Target

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "Promptreel-image-fetch/1.0"


@contextmanager
def http_get(target, addresses, ssl_context, deadline, accept: str, what: str):
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
    backend = PinnedBackend(addresses, target.port, deadline)
    with ExitStack() as stack:
        # Only our own network calls are translated: an error raised by the caller's code
        # while it holds the stream (a full disk, say) must come out as itself.
        with mapped_errors(target, what):
            pool = stack.enter_context(
                httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)
            )
            response = stack.enter_context(
                pool.stream("GET", url, headers=headers, extensions={"timeout": timeouts})
            )
        found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        yield response.status, found, response


@contextmanager
def mapped_errors(target: Target, what: str):
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
def make_ssl_context(verify: bool | str) -> ssl.SSLContext:
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


class PinnedBackend(httpcore.NetworkBackend):
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
