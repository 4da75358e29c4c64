"""The HTTP side of a guarded fetch: connect only to an address that was checked (so DNS
rebinding cannot move us), keep the name for Host, SNI and certificates, and bound every read by
one deadline."""

from __future__ import annotations

import functools
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager

import httpcore

from .addresses import FetchRefused, IPAddress, Target

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
USER_AGENT = "Promptreel-image-fetch/1.0"


# Connections kept open for the next fetch (http_get's keep_alive), per process: one pool per
# everything that decided where a connection goes and how it was secured, so a connection is
# only reused for the same host name, port and TLS settings AND the same checked addresses (a
# new DNS answer makes a new pool: what was checked is still what is used).
_pools: OrderedDict[tuple, httpcore.ConnectionPool] = OrderedDict()
_pools_lock = threading.Lock()
MAX_POOLS = 8
KEEPALIVE_SECONDS = 30.0
# The deadline of the fetch this thread is making: a kept connection serves several fetches,
# each with its own deadline.
_current = threading.local()


def _kept_pool(target, addresses, ssl_context) -> httpcore.ConnectionPool:
    key = (os.getpid(), target.scheme, target.host, target.port, tuple(addresses), ssl_context)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = httpcore.ConnectionPool(
                ssl_context=ssl_context,
                network_backend=PinnedBackend(addresses, target.port, deadline=None),
                max_keepalive_connections=2,
                keepalive_expiry=KEEPALIVE_SECONDS,
            )
            _pools[key] = pool
            while len(_pools) > MAX_POOLS:  # dropped, not closed: another thread may use it
                _pools.popitem(last=False)
        else:
            _pools.move_to_end(key)
        return pool


def forget_kept_connections() -> None:
    """Close every kept connection (tests)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


@contextmanager
def http_get(
    target, addresses, ssl_context, deadline, accept: str, what: str, *, keep_alive: bool = False
):
    """One GET to a pinned address: yields (status, lower-cased headers, open response).

    keep_alive: the connection stays open for the next fetch from the same checked address
    (a provider's CDN, one download per finished job: it saves a TLS handshake each); off for
    links users give, so no connection to an address of theirs outlives its fetch.
    """
    headers = [
        (b"Host", target.authority.encode("ascii")),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept", accept.encode("ascii")),
        (b"Accept-Encoding", b"identity"),  # never decompress: no zip bombs, honest byte counts
    ]
    if not keep_alive:
        headers.append((b"Connection", b"close"))
    remaining = max(deadline - time.monotonic(), 0.001)
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), remaining)
    url = httpcore.URL(
        scheme=target.scheme.encode(), host=target.host.encode(), port=target.port,
        target=target.path.encode("ascii"),
    )  # fmt: skip
    outer = getattr(_current, "deadline", None)
    _current.deadline = deadline
    with ExitStack() as stack:
        stack.callback(setattr, _current, "deadline", outer)
        # Only our own network calls are translated: an error raised by the caller's code
        # while it holds the stream (a full disk, say) must come out as itself.
        with mapped_errors(target, what):
            if keep_alive:
                pool = _kept_pool(target, addresses, ssl_context)
            else:
                backend = PinnedBackend(addresses, target.port, deadline)
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

    def __init__(self, addresses: Iterable[IPAddress], port: int, deadline: float | None) -> None:
        """deadline None: each call is bound by the deadline of the fetch being made."""
        self._addresses = list(addresses)
        self._port = port
        self._fixed = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if port != self._port:
            raise httpcore.ConnectError("unexpected port")
        error: Exception = httpcore.ConnectError("no address to connect to")
        # Try each checked address in turn (e.g. IPv6 first, then IPv4), never a new lookup.
        for address in self._addresses:
            budget = _budget(_deadline_of(self._fixed), timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, timeout=budget, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._fixed)
        raise error


class _DeadlineStream(httpcore.NetworkStream):
    """Shrinks every socket timeout to what is left of the fetch's total deadline.

    A per-read timeout alone lets a server that drips one byte just inside it go on forever.
    A kept connection (deadline None) goes by the deadline of whichever fetch is using it.
    """

    def __init__(self, stream: httpcore.NetworkStream, deadline: float | None) -> None:
        self._stream = stream
        self._fixed = deadline

    @property
    def _deadline(self) -> float:
        return _deadline_of(self._fixed)

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
        return _DeadlineStream(tls, self._fixed)

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


def _deadline_of(fixed: float | None) -> float:
    if fixed is not None:
        return fixed
    # A kept connection used outside any fetch (httpcore closing it) gets no time at all.
    return getattr(_current, "deadline", None) or time.monotonic()


def _budget(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise error("the total time limit for the download has passed")
    return remaining if timeout is None else min(timeout, remaining)
