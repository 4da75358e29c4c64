"""HTTP plumbing: the TLS threading server and the handler that hands each request to
``FakeFal._handle`` and records it.
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .records import RecordedRequest

if TYPE_CHECKING:
    from .server import FakeFal


class _Resp:
    __slots__ = ("status", "headers", "body", "stream", "drop")

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.stream: Callable[[Any], None] | None = None
        self.drop = False


def _json_resp(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Resp:
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(headers)
    return _Resp(status, json.dumps(obj).encode(), h)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 2048
    allow_reuse_address = True

    fake: FakeFal
    ssl_context: ssl.SSLContext

    def __init__(self, address: tuple[str, int], fake: FakeFal, context: ssl.SSLContext):
        self.fake = fake
        self.ssl_context = context
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        # TLS handshake here, in the connection's own thread, so a slow or broken client
        # never blocks the accept loop.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request.settimeout(10.0)
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        with self._conns_lock:
            self._conns.add(conn)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakefal/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        body = self._read_body()
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            kind, request_id, resp = fake._handle(method, split.path, query, headers, body)
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for assertions
            fake.errors.append(exc)
            kind, request_id = "error", None
            resp = _json_resp(500, {"detail": f"fakefal internal error: {exc!r}"})
        parsed: Any = None
        if body and "json" in headers.get("content-type", ""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        if fake.record_requests:
            fake._record(
                RecordedRequest(
                    method=method,
                    path=split.path,
                    query=query,
                    headers=headers,
                    body=body,
                    json=parsed,
                    kind=kind,
                    status=0 if resp.drop else resp.status,
                    request_id=request_id,
                )
            )
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.stream is None and "Content-Length" not in resp.headers:
            self.send_header("Content-Length", str(len(resp.body)))
        if resp.stream is not None and "Content-Length" not in resp.headers:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if method == "HEAD":
            return
        try:
            if resp.stream is not None:
                resp.stream(self.wfile)
            elif resp.body:
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
