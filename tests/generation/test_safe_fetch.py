"""core.safe_fetch: SSRF-safe download of user-supplied image URLs.

Framework-free: no Django, no database. Nothing here touches the real internet: host names go
through stub resolvers, and the only servers are local ones on 127.0.0.1, which the tests reach
by passing an ip_check that lets exactly 127.0.0.1 count as "public".
"""

import datetime
import ipaddress
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.safe_fetch import FetchRefused, check_ip, fetch_url, open_stream
from core.safe_fetch.transport import forget_kept_connections

PUBLIC = "93.184.216.34"
STUB_DNS = {
    "public.example": [PUBLIC],
    "private.example": ["10.0.0.5"],
    "loop.example": ["127.0.0.1"],
    "meta.example": ["169.254.169.254"],
    "mixed.example": [PUBLIC, "192.168.1.1"],
    "v6loop.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "ula.example": ["fd00:ec2::254"],
    "scoped.example": ["fe80::1%1"],
    "garbage.example": ["not-an-address"],
    "nothing.example": [],
}


class StubResolver:
    """Answers from a table (or a sequence of tables, one per call) and counts calls."""

    def __init__(self, *answers: dict[str, list[str]]):
        self.answers = answers or (STUB_DNS,)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        table = self.answers[min(len(self.calls), len(self.answers) - 1)]
        self.calls.append((host, port))
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]


class ConnectRecorder:
    """Stands in for the real socket layer: records each address and refuses the connection."""

    def __init__(self):
        self.addresses: list[tuple[str, int]] = []

    def connect_tcp(self, backend, host, port, **kwargs):
        self.addresses.append((host, port))
        raise httpcore.ConnectError("connection refused (test stub)")


@pytest.fixture
def connects(monkeypatch) -> ConnectRecorder:
    recorder = ConnectRecorder()
    # Replaces the socket layer under safe_fetch's pinned backend; a plain function so that
    # it binds as a method.
    monkeypatch.setattr(
        httpcore.SyncBackend,
        "connect_tcp",
        lambda backend, host, port, **kwargs: recorder.connect_tcp(backend, host, port),
    )
    return recorder


def loopback_counts_as_public(ip):
    """Test stand-in for check_ip: the local test server's address is allowed, nothing else."""
    if ip != ipaddress.IPv4Address("127.0.0.1"):
        check_ip(ip)


# --- check_ip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        PUBLIC,
        "2606:4700:4700::1111",
        "2a00:1450:4001::1",
        "::ffff:8.8.8.8",  # IPv4-mapped public
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_pass(address):
    check_ip(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.100.100.200",
        "0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",  # noqa: S104
        "192.0.0.170", "192.0.2.1", "198.18.0.1", "198.19.255.255", "198.51.100.7",
        "203.0.113.9", "192.88.99.1", "168.63.129.16",
        "::", "::1", "fe80::1", "fc00::1", "fd00:ec2::254", "fec0::1", "ff02::1",
        "2001:db8::1", "100::1", "3fff::1", "::127.0.0.1",
        "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254", "::ffff:0:a00:1",
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808",
        "2002:7f00:1::1", "2002:c0a8:101::1", "2002:a9fe:a9fe::",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1
        "fe80::1%eth0",
    ],
)  # fmt: skip
def test_non_public_addresses_are_refused(address):
    with pytest.raises(FetchRefused) as info:
        check_ip(ipaddress.ip_address(address))
    assert info.value.code == "url_private_address"
    assert "public internet" in str(info.value)


# --- refused before any connection ----------------------------------------------------------

REFUSED = [
    # schemes
    ("http://public.example/cat.png", "url_scheme"),
    ("ftp://public.example/cat.png", "url_scheme"),
    ("file:///etc/passwd", "url_scheme"),
    ("gopher://public.example:70/_GET", "url_scheme"),
    ("data:image/png;base64,iVBORw0KGgo=", "url_scheme"),
    ("javascript:alert(1)", "url_scheme"),
    ("dict://public.example:11211/stat", "url_scheme"),
    ("public.example/cat.png", "url_scheme"),
    ("https:public.example/cat.png", "url_scheme"),
    # garbage, credentials, ports
    ("", "url_invalid"),
    ("   ", "url_invalid"),
    (None, "url_invalid"),
    ("https://", "url_invalid"),
    ("https:///cat.png", "url_invalid"),
    ("https://[::1", "url_invalid"),
    ("https://exa mple.com/cat.png", "url_invalid"),
    ("https://public.example/ca\nt.png", "url_invalid"),
    ("https://public.example\\@127.0.0.1/", "url_invalid"),
    ("https://" + "a" * 3000 + ".example/", "url_invalid"),
    ("https://user:pass@public.example/cat.png", "url_invalid"),
    ("https://user@public.example/cat.png", "url_invalid"),
    ("https://public.example@127.0.0.1/", "url_invalid"),
    ("https://public.example:8443/cat.png", "url_invalid"),
    ("https://public.example:22/", "url_invalid"),
    ("https://public.example:80/", "url_invalid"),
    ("https://public.example:0/", "url_invalid"),
    ("https://public.example:99999/", "url_invalid"),
    ("https://public.example:-1/", "url_invalid"),
    ("https://localhost/", "url_invalid"),  # single label
    ("https://intranet/", "url_invalid"),
    ("https://%31%32%37.0.0.1/", "url_invalid"),
    ("https://1.2.3.256/", "url_invalid"),
    ("https://08.1.2.3/", "url_invalid"),  # 8 is not an octal digit
    ("https://1.2.3.4.5/", "url_invalid"),
    ("https://bad..example/", "url_invalid"),
    # odd spellings of private IPv4 addresses
    ("https://127.0.0.1/", "url_private_address"),
    ("https://127.0.0.1./", "url_private_address"),
    ("https://2130706433/", "url_private_address"),
    ("https://0x7f000001/", "url_private_address"),
    ("https://0X7F000001/", "url_private_address"),
    ("https://0177.0.0.1/", "url_private_address"),
    ("https://017700000001/", "url_private_address"),
    ("https://127.1/", "url_private_address"),
    ("https://0x7f.1/", "url_private_address"),
    ("https://0x7f.0x0.0x0.0x1/", "url_private_address"),
    ("https://0/", "url_private_address"),
    ("https://0.0.0.0/", "url_private_address"),
    ("https://167772161/", "url_private_address"),  # 10.0.0.1
    ("https://0xa9fea9fe/latest/meta-data/", "url_private_address"),  # 169.254.169.254
    ("https://１２７.０.０.１/", "url_private_address"),  # full-width digits
    ("HTTPS://127.0.0.1/", "url_private_address"),
    # private IPv4 literals by category
    ("https://10.0.0.1/", "url_private_address"),
    ("https://172.16.5.4/", "url_private_address"),
    ("https://192.168.0.1/", "url_private_address"),
    ("https://169.254.169.254/latest/meta-data/", "url_private_address"),
    ("https://100.100.100.200/latest/meta-data/", "url_private_address"),
    ("https://100.64.0.1/", "url_private_address"),
    ("https://255.255.255.255/", "url_private_address"),
    ("https://224.0.0.1/", "url_private_address"),
    ("https://240.0.0.1/", "url_private_address"),
    ("https://192.0.0.170/", "url_private_address"),
    ("https://198.18.0.1/", "url_private_address"),
    ("https://192.0.2.1/", "url_private_address"),
    ("https://203.0.113.5/", "url_private_address"),
    # IPv6 literals, including IPv4 embedded in them
    ("https://[::1]/", "url_private_address"),
    ("https://[::]/", "url_private_address"),
    ("https://[::ffff:127.0.0.1]/", "url_private_address"),
    ("https://[::ffff:7f00:1]/", "url_private_address"),
    ("https://[::ffff:a9fe:a9fe]/", "url_private_address"),
    ("https://[64:ff9b::7f00:1]/", "url_private_address"),
    ("https://[64:ff9b::10.0.0.1]/", "url_private_address"),
    ("https://[64:ff9b:1::808:808]/", "url_private_address"),
    ("https://[2002:7f00:1::]/", "url_private_address"),
    ("https://[2002:c0a8:101::1]/", "url_private_address"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "url_private_address"),
    ("https://[fe80::1]/", "url_private_address"),
    ("https://[fe80::1%25eth0]/", "url_private_address"),
    ("https://[fc00::1]/", "url_private_address"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "url_private_address"),
    ("https://[fec0::1]/", "url_private_address"),
    ("https://[ff02::1]/", "url_private_address"),
    ("https://[2001:db8::1]/", "url_private_address"),
    # host names whose (stub) DNS answers are private
    ("https://foo.localhost/", "url_private_address"),
    ("https://private.example/cat.png", "url_private_address"),
    ("https://loop.example/cat.png", "url_private_address"),
    ("https://LOOP.example./cat.png", "url_private_address"),
    ("https://meta.example/latest/meta-data/", "url_private_address"),
    ("https://mixed.example/cat.png", "url_private_address"),  # one bad answer is enough
    ("https://v6loop.example/", "url_private_address"),
    ("https://mapped.example/", "url_private_address"),
    ("https://ula.example/", "url_private_address"),
    ("https://scoped.example/", "url_private_address"),
    # host names that do not resolve
    ("https://unknown.example/cat.png", "url_unresolvable"),
    ("https://nothing.example/cat.png", "url_unresolvable"),
    ("https://garbage.example/cat.png", "url_unresolvable"),
]


@pytest.mark.parametrize(("url", "code"), REFUSED)
def test_refused_urls_never_connect(url, code, connects):
    with pytest.raises(FetchRefused) as info:
        fetch_url(url, max_bytes=1000, resolver=StubResolver())
    assert info.value.code == code, str(info.value)
    assert str(info.value)  # a message to show the user
    assert connects.addresses == []


def test_private_answers_are_not_echoed_to_the_user(connects):
    with pytest.raises(FetchRefused) as info:
        fetch_url("https://private.example/", max_bytes=1000, resolver=StubResolver())
    assert "10.0.0.5" not in str(info.value)
    assert "private.example" in str(info.value)


@pytest.mark.parametrize(
    ("url", "resolved_as", "connected_to"),
    [
        ("https://public.example/cat.png", "public.example", PUBLIC),
        ("https://PUBLIC.Example./cat.png", "public.example", PUBLIC),
        ("https://bücher.example/", "xn--bcher-kva.example", PUBLIC),
        ("https://ｐｕｂｌｉｃ.example/", "public.example", PUBLIC),
        ("https://93.184.216.34/", None, PUBLIC),
        ("https://1572395042/", None, PUBLIC),  # integer form of 93.184.216.34
        ("https://0x5d.0xb8.0xd8.0x22/", None, PUBLIC),
        ("https://0135.0270.0330.042/", None, PUBLIC),
        ("https://93.12113954/", None, PUBLIC),  # short form
        ("https://[2606:4700:4700::1111]/", None, "2606:4700:4700::1111"),
        ("https://[::ffff:93.184.216.34]/", None, "::ffff:93.184.216.34"),
    ],
)
def test_odd_but_public_hosts_reach_the_address_they_mean(url, resolved_as, connected_to, connects):
    resolver = StubResolver({**STUB_DNS, "xn--bcher-kva.example": [PUBLIC]})
    with pytest.raises(FetchRefused) as info:
        fetch_url(url, max_bytes=1000, resolver=resolver)
    assert info.value.code == "url_http_error"  # the stub refused the connection
    assert resolver.calls == ([(resolved_as, 443)] if resolved_as else [])
    # Compared as addresses: how str() spells an IPv4-mapped address changed in Python 3.13.
    [(host, port)] = connects.addresses
    assert (ipaddress.ip_address(host), port) == (ipaddress.ip_address(connected_to), 443)


# --- DNS rebinding --------------------------------------------------------------------------


def test_rebinding_resolver_is_asked_once_and_the_checked_answer_is_used(connects):
    # Public on the first lookup, loopback on any later one: a second lookup would be fatal.
    resolver = StubResolver({"rebind.example": [PUBLIC]}, {"rebind.example": ["127.0.0.1"]})
    with pytest.raises(FetchRefused):
        fetch_url("https://rebind.example/cat.png", max_bytes=1000, resolver=resolver)
    assert resolver.calls == [("rebind.example", 443)]
    assert connects.addresses == [(PUBLIC, 443)]


def test_every_checked_answer_may_be_tried_but_nothing_else(connects):
    resolver = StubResolver({"two.example": [PUBLIC, "2606:4700:4700::1111"]})
    with pytest.raises(FetchRefused):
        fetch_url("https://two.example/", max_bytes=1000, resolver=resolver)
    assert connects.addresses == [(PUBLIC, 443), ("2606:4700:4700::1111", 443)]


# --- against a real local server ------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Host")))
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        route = getattr(self, "route_" + url.path.strip("/").split("/")[0].replace("-", "_"), None)
        if route is None:
            self.reply(404, b"not found", "text/plain")
        else:
            route(url.path, query)

    def reply(self, status, body=b"", content_type="image/png", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def route_bytes(self, path, query):
        self.reply(200, b"x" * int(path.split("/")[2]), "image/png; charset=binary")

    def route_chunked(self, path, query):
        # No Content-Length: only counting while streaming can enforce the cap.
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        size = int(path.split("/")[2])
        for start in range(0, size, 1000):
            piece = b"y" * min(1000, size - start)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def route_huge_length(self, path, query):
        # Claims 1 TB but sends 1 KB and hangs up: reading the body would fail differently.
        self.send_response(200)
        self.send_header("Content-Length", str(10**12))
        self.end_headers()
        self.wfile.write(b"z" * 1024)

    def route_host(self, path, query):
        self.reply(200, self.headers.get("Host", "").encode(), "text/plain")

    def route_redirect(self, path, query):
        self.reply(int(query.get("status", 302)), headers=[("Location", query["to"])])

    def route_no_location(self, path, query):
        self.reply(302)

    def route_chain(self, path, query):
        left = int(path.split("/")[2])
        if left == 0:
            self.reply(200, b"end of chain")
        else:
            self.reply(301, headers=[("Location", f"/chain/{left - 1}")])

    def route_keep(self, path, query):
        # A server that keeps connections open (as a CDN does): the body names the connection
        # by the client's port.
        body = str(self.client_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_drip(self, path, query):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"d")
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client gave up, as it should

    def route_slow_headers(self, path, query):
        time.sleep(1.5)
        self.reply(200, b"late")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address):
        # The client hanging up mid-response is what several tests are about; anything else
        # is a bug in the handler and should be seen.
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)


def start_server(tls_context=None):
    server = Server(("127.0.0.1", 0), Handler)
    server.seen = []
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    return server


@pytest.fixture(scope="module")
def http_server():
    server = start_server()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetch(http_server):
    """fetch(path) against the local HTTP server, under the name images.example."""
    port = http_server.server_address[1]
    base = f"http://images.example:{port}"

    def fetch(path, resolver=None, **options):
        options = {"max_bytes": 10_000, "timeout": 3.0, **options}
        return fetch_url(
            base + path,
            resolver=resolver or StubResolver({"images.example": ["127.0.0.1"]}),
            allow_http=True,
            allowed_ports={port},
            ip_check=loopback_counts_as_public,
            **options,
        )

    fetch.base = base
    fetch.port = port
    return fetch


def refused_fetch(fetch, path, **options) -> FetchRefused:
    with pytest.raises(FetchRefused) as info:
        fetch(path, **options)
    return info.value


def test_success_returns_body_type_and_final_url(fetch):
    result = fetch("/bytes/500?x=1")
    assert result.content == b"x" * 500
    assert result.content_type == "image/png"
    assert result.final_url == f"{fetch.base}/bytes/500?x=1"


def test_rebinding_against_a_real_server_uses_the_first_answer_and_sends_the_host(fetch):
    # The first answer is the (test-allowed) server; any later lookup would say 10.9.9.9.
    resolver = StubResolver({"images.example": ["127.0.0.1"]}, {"images.example": ["10.9.9.9"]})
    result = fetch("/host", resolver=resolver)
    assert result.content == f"images.example:{fetch.port}".encode()
    assert resolver.calls == [("images.example", fetch.port)]


def test_exactly_the_byte_cap_is_accepted(fetch):
    assert len(fetch("/bytes/1000", max_bytes=1000).content) == 1000
    assert len(fetch("/chunked/1000", max_bytes=1000).content) == 1000


@pytest.mark.parametrize("route", ["bytes", "chunked"])
def test_one_byte_over_the_cap_is_refused(fetch, route):
    error = refused_fetch(fetch, f"/{route}/1001", max_bytes=1000)
    assert error.code == "url_too_large"
    assert "1,000-byte" in str(error)


def test_a_huge_content_length_is_refused_before_reading_the_body(fetch):
    assert refused_fetch(fetch, "/huge-length").code == "url_too_large"


def test_404_is_refused_and_named(fetch):
    error = refused_fetch(fetch, "/missing.png")
    assert error.code == "url_http_error"
    assert "404" in str(error)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_followed(fetch, status):
    result = fetch(f"/redirect?status={status}&to=/bytes/10")
    assert result.content == b"x" * 10
    assert result.final_url == f"{fetch.base}/bytes/10"


def test_a_redirect_chain_within_the_limit_is_followed(fetch):
    assert fetch("/chain/3", max_redirects=3).content == b"end of chain"


def test_too_many_redirects_are_refused(fetch):
    error = refused_fetch(fetch, "/chain/4", max_redirects=3)
    assert error.code == "url_redirect"
    assert "more than 3" in str(error)
    assert refused_fetch(fetch, "/chain/1", max_redirects=0).code == "url_redirect"


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("http://10.0.0.1:{port}/", "url_private_address"),
        ("http://169.254.169.254:{port}/latest/meta-data/", "url_private_address"),
        ("http://[::ffff:127.0.0.2]:{port}/", "url_private_address"),
        ("http://2130706434:{port}/", "url_private_address"),  # 127.0.0.2, not the server
        ("http://elsewhere.example:{port}/", "url_unresolvable"),  # unknown to the stub
        ("file:///etc/passwd", "url_scheme"),
        ("gopher://images.example:{port}/", "url_scheme"),
        ("http://images.example:1/", "url_invalid"),  # a port that is not allowed
    ],
)
def test_redirects_to_refused_targets_are_refused(fetch, target, code):
    error = refused_fetch(fetch, "/redirect?to=" + target.format(port=fetch.port))
    assert error.code == code
    assert "redirects" in str(error)


def test_a_redirect_to_a_host_resolving_privately_is_refused(fetch):
    resolver = StubResolver({"images.example": ["127.0.0.1"], "inside.example": ["10.1.1.1"]})
    error = refused_fetch(
        fetch, f"/redirect?to=http://inside.example:{fetch.port}/", resolver=resolver
    )
    assert error.code == "url_private_address"
    assert "10.1.1.1" not in str(error)
    assert [host for host, _ in resolver.calls] == ["images.example", "inside.example"]


def test_a_redirect_without_location_is_refused(fetch):
    assert refused_fetch(fetch, "/no-location").code == "url_redirect"


def test_a_slow_drip_body_hits_the_total_deadline(fetch):
    error = refused_fetch(fetch, "/drip", timeout=0.5)
    assert error.code == "url_timeout"
    assert "too long" in str(error)


def test_slow_headers_hit_the_deadline(fetch):
    assert refused_fetch(fetch, "/slow-headers", timeout=0.3).code == "url_timeout"


@pytest.fixture
def kept(http_server):
    """kept(path, host=…, **options): open_stream with keep_alive against the local server;
    returns the body."""
    port = http_server.server_address[1]
    forget_kept_connections()

    def kept(path, host="cdn.example", *, keep_alive=True, **options):
        options = {"max_bytes": 10_000, "timeout": 3.0, **options}
        with open_stream(
            f"http://{host}:{port}{path}",
            resolver=StubResolver({host: ["127.0.0.1"]}),
            allow_http=True,
            allowed_ports={port},
            ip_check=loopback_counts_as_public,
            keep_alive=keep_alive,
            **options,
        ) as stream:
            return b"".join(stream)

    yield kept
    forget_kept_connections()


def test_kept_alive_downloads_reuse_one_connection_and_others_do_not(kept):
    first, second = kept("/keep"), kept("/keep")
    assert first == second, "the second download came over the first one's connection"
    assert kept("/keep", keep_alive=False) != first
    assert kept("/keep", keep_alive=False) != kept("/keep", keep_alive=False)


def test_a_kept_connection_serves_only_the_host_name_it_was_opened_for(kept):
    # Same checked address, another name: its own connection (and its own TLS identity).
    assert kept("/keep", host="cdn.example") != kept("/keep", host="other.example")


def test_a_kept_connection_is_bound_by_each_fetchs_own_deadline(kept):
    kept("/keep", timeout=30.0)  # the connection is opened under a long deadline
    started = time.monotonic()
    with pytest.raises(FetchRefused) as info:
        kept("/drip", timeout=0.5)  # reuses it: the drip must stop at this fetch's deadline
    assert info.value.code == "url_timeout"
    assert time.monotonic() - started < 2.5
    assert kept("/keep")  # a connection cut mid-body is not handed out again


def test_a_closed_port_is_an_error_not_a_crash():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchRefused) as info:
        fetch_url(
            f"http://127.0.0.1:{port}/",
            max_bytes=10,
            allow_http=True,
            allowed_ports={port},
            ip_check=loopback_counts_as_public,
        )
    assert info.value.code == "url_http_error"


# --- HTTPS: SNI and certificate checked against the name, connection made to the address ----


def make_certificates(tmp_path, hostname):
    """A throwaway CA and a server certificate for hostname, signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Promptreel test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(ca_path), str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("tls"), "images.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server = start_server(context)
    server.ca, server.server_names = ca, server_names
    yield server
    server.shutdown()
    server.server_close()


def fetch_https(server, host="images.test", **options):
    port = server.server_address[1]
    return fetch_url(
        f"https://{host}:{port}/host",
        max_bytes=1000,
        timeout=3.0,
        resolver=StubResolver({host: ["127.0.0.1"]}),
        allowed_ports={port},
        ip_check=loopback_counts_as_public,
        **options,
    )


def test_https_verifies_the_name_while_connecting_to_the_checked_address(https_server):
    server_names = https_server.server_names
    server_names.clear()
    result = fetch_https(https_server, verify=https_server.ca)
    assert result.content == f"images.test:{https_server.server_address[1]}".encode()
    assert server_names == ["images.test"]  # SNI carried the name, not 127.0.0.1


def test_https_certificate_for_another_name_is_refused(https_server):
    with pytest.raises(FetchRefused) as info:
        fetch_https(https_server, host="other.test", verify=https_server.ca)
    assert info.value.code == "url_http_error"
    assert "certificate" in str(info.value)


def test_https_untrusted_certificate_is_refused_by_default(https_server):
    with pytest.raises(FetchRefused) as info:
        fetch_https(https_server)
    assert "certificate" in str(info.value)
