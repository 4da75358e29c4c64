"""A fake fal.ai queue server for tests and benchmarks (stdlib HTTPS on loopback, no Django).

The real, unpatched ``fal-client`` talks to it: point ``FAL_QUEUE_RUN_HOST`` at ``fake.host``
and ``SSL_CERT_FILE`` at ``fake.ca_bundle_path`` (see ``configure_fal_client_env``).

Served on one port (https://127.0.0.1:PORT):

- ``POST /{owner}/{alias}[/{path...}][?fal_webhook=URL]``         submit (auth)
- ``GET  /{owner}/{alias}[/{path...}]/requests/{id}/status``      status (auth, ``logs=``)
- ``GET  /{owner}/{alias}[/{path...}]/requests/{id}/status/stream``  status as SSE (auth)
- ``GET  /{owner}/{alias}[/{path...}]/requests/{id}``             result (auth)
- ``PUT  /{owner}/{alias}[/{path...}]/requests/{id}/cancel``      cancel (auth)
- ``GET|HEAD /files/{name}``                                      result files (no auth, Range)
- ``GET  /.well-known/jwks.json``                                 webhook public keys
- ``POST /storage/auth/token?storage_type=fal-cdn-v3``            CDN upload token (auth)
- ``POST /files/upload``                                          CDN upload (Bearer CDN token)
- ``POST /storage/upload/initiate?storage_type=gcs``              storage upload (auth)
- ``PUT  /storage/put/{id}``                                      the signed PUT it hands out

fal-client 1.0.3 has no setting for its upload hosts (``REST_URL`` = https://rest.fal.ai and
``CDN_URL`` = https://v3.fal.media are module constants of ``fal_client.client``, read at call
time); ``configure_fal_client_env`` points both at this server. Uploaded files are served at
``/files/uploads/...`` like result files. With ``fetch_inputs`` on, a submit GETs every
``*_url`` / ``*_urls`` value of its arguments (as fal's runner would) and records the answer;
a URL it cannot read completes the request with fal's 422 ``file_download_error``.

Requests are simulated in time: each one waits ``queue_time`` seconds IN_QUEUE, then
``inference_time`` seconds IN_PROGRESS, then is COMPLETED with its ``Outcome``. A scheduler
thread completes requests (and sends their webhooks) on time even when nobody polls; status
and result calls also evaluate the clock themselves, so answers never lag the scheduler.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import heapq
import http.server
import ipaddress
import itertools
import json
import math
import mimetypes
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .certs import get_cert_files
from .video import make_mp4

__all__ = [
    "FakeFal",
    "InputFetch",
    "Outcome",
    "RecordedRequest",
    "UploadedFile",
    "WebhookDelivery",
    "DEFAULT_INFRA_STATUS",
    "INJECTABLE",
]

_UNSET: Any = object()

APP_NAMESPACES = ("workflows", "comfy")  # same list as fal_client.client.APP_NAMESPACES

#: HTTP status fal uses for each infrastructure error_type (fal-protocol.md section 2).
DEFAULT_INFRA_STATUS: dict[str, int] = {
    "request_timeout": 504,
    "startup_timeout": 504,
    "runner_scheduling_failure": 503,
    "runner_disconnected": 503,
    "runner_server_error": 500,
    "internal_error": 500,
}
_DEFAULT_INFRA_DETAIL: dict[str, str] = {
    "request_timeout": "Request timed out",
    "startup_timeout": "Runner startup timed out",
    "runner_scheduling_failure": "Failed to schedule a runner for the request",
    "runner_disconnected": "Runner disconnected during the request",
    "runner_server_error": "Runner returned an internal server error",
    "internal_error": "Internal server error",
}

FILE_MODES = ("mp4", "octet_stream", "html", "not_video", "huge", "truncated", "missing")

#: Calls ``fail_next`` can break: the queue calls, and the four steps of fal's uploads.
INJECTABLE = (
    "submit",
    "status",
    "result",
    "cancel",
    "upload_token",
    "upload",
    "upload_initiate",
    "upload_put",
)
#: What fal answers when its runner cannot download an input URL (a 422 like validation).
FILE_DOWNLOAD_ERROR = "Failed to download the file. Please check if the URL is accessible."
INPUT_FETCH_MAX_BYTES = 64 * 1024 * 1024
CDN_TOKEN_TTL_S = 3600


# --------------------------------------------------------------------------------------------
# Public value types


@dataclass(frozen=True)
class Outcome:
    """How one submitted request ends. Build with the class methods; all fields optional.

    ``queue_time`` / ``inference_time`` override the server's timing for this request
    (``math.inf`` = never leaves that phase). ``file`` selects what ``/files/<id>.mp4`` serves
    for a successful request (one of ``FILE_MODES``), ``file_size`` is the body size for
    ``huge``, ``bytes_per_s`` throttles that file, ``video`` = (width, height, seconds, fps) of
    the clip. ``status_error`` / ``status_error_type`` override the ``error`` / ``error_type``
    fields of the COMPLETED status. ``result_status`` / ``result_body`` / ``result_text``
    override the result call (a JSON value, or raw text that is not JSON).
    """

    kind: str = "success"
    queue_time: float | None = None
    inference_time: float | None = None
    queue_position: int | None = None
    detail: Any = None
    error_type: str | None = None
    result_status: int | None = None
    result_body: Any = _UNSET
    result_text: str | None = None
    result_headers: Mapping[str, str] | None = None
    status_error: Any = _UNSET
    status_error_type: Any = _UNSET
    file: str = "mp4"
    file_size: int | None = None
    bytes_per_s: float | None = None
    video: tuple[int, int, float, int] | None = None
    logs: tuple[str, ...] | None = None

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def success(cls, **kw: Any) -> Outcome:
        return cls(kind="success", **kw)

    @classmethod
    def bad_file(cls, file: str, **kw: Any) -> Outcome:
        """Success whose video file is broken: see ``FILE_MODES``."""
        if file not in FILE_MODES:
            raise ValueError(f"file must be one of {FILE_MODES}")
        return cls(kind="success", file=file, **kw)

    @classmethod
    def validation_error(
        cls,
        msg: str = "Input should be a valid prompt",
        *,
        loc: Iterable[str | int] = ("body", "prompt"),
        type: str = "value_error",
        **kw: Any,
    ) -> Outcome:
        detail = [{"loc": list(loc), "msg": msg, "type": type}]
        return cls(kind="validation_error", detail=detail, result_status=422, **kw)

    @classmethod
    def content_policy(
        cls,
        msg: str = (
            "The content could not be processed because it contained material flagged by a "
            "content checker."
        ),
        *,
        loc: Iterable[str] = ("body", "prompt"),
        **kw: Any,
    ) -> Outcome:
        detail = [
            {
                "loc": list(loc),
                "msg": msg,
                "type": "content_policy_violation",
                "url": "https://docs.fal.ai/errors#content_policy_violation",
            }
        ]
        return cls(kind="content_policy", detail=detail, result_status=422, **kw)

    @classmethod
    def malformed(cls, body: Any = None, **kw: Any) -> Outcome:
        """200 with a JSON body that is not a valid Pika output (default ``{"video": {}}``)."""
        body = {"video": {}} if body is None else body
        return cls(kind="malformed", result_status=200, result_body=body, **kw)

    @classmethod
    def non_json(
        cls, text: str = "<html><body>upstream garbage</body></html>", status: int = 200, **kw: Any
    ) -> Outcome:
        return cls(kind="non_json", result_status=status, result_text=text, **kw)

    @classmethod
    def infra_error(
        cls,
        error_type: str = "request_timeout",
        detail: str | None = None,
        status: int | None = None,
        **kw: Any,
    ) -> Outcome:
        """The request completes failed with an infrastructure error_type (e.g. timeout)."""
        return cls(
            kind="infra_error",
            error_type=error_type,
            detail=detail or _DEFAULT_INFRA_DETAIL.get(error_type, "Request failed"),
            result_status=status or DEFAULT_INFRA_STATUS.get(error_type, 500),
            **kw,
        )

    @classmethod
    def never_completes(cls, **kw: Any) -> Outcome:
        """Starts, then stays IN_PROGRESS forever (until cancelled or ``complete_now``)."""
        return cls(kind="never_completes", inference_time=math.inf, **kw)

    @classmethod
    def stuck_in_queue(cls, **kw: Any) -> Outcome:
        """Stays IN_QUEUE forever (until cancelled or ``complete_now``)."""
        return cls(kind="stuck_in_queue", queue_time=math.inf, **kw)


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (recorded after it was answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any
    # submit | status | status_stream | result | cancel | file | jwks | upload_token | upload |
    # upload_initiate | upload_put | unknown
    kind: str
    status: int  # status code answered (0 = connection dropped on purpose)
    request_id: str | None = None
    at: float = field(default_factory=time.time)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class WebhookDelivery:
    """One webhook POST attempt (recorded after the target answered, or failed)."""

    url: str
    request_id: str
    body: bytes
    headers: dict[str, str]
    status_code: int | None  # None: transport error / refused
    error: str | None = None
    attempt: int = 1
    copy: int = 1
    at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class UploadedFile:
    """One file uploaded to the fake's CDN (``via="cdn"``) or storage (``via="storage"``)."""

    url: str
    data: bytes
    content_type: str
    file_name: str
    via: str
    at: float = field(default_factory=time.time)


@dataclass
class InputFetch:
    """One input URL the fake fetched at submit, as fal's runner would (``fetch_inputs``)."""

    request_id: str
    field: str  # "image_url", or "image_urls[1]"
    url: str
    status: int | None  # None: transport error, refused or not fetched
    size: int = 0
    sha256: str = ""
    content_type: str = ""
    error: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


# --------------------------------------------------------------------------------------------
# Internals


@dataclass
class _Injection:
    status: int
    error_type: str | None
    detail: Any
    mode: str  # fal | ingress | disconnect | raw
    body: Any = None
    headers: Mapping[str, str] | None = None


@dataclass
class _File:
    mode: str
    data: bytes
    size: int
    content_type: str
    bytes_per_s: float | None = None
    # Monotonic time after which fal's CDN has deleted it (X-Fal-Object-Lifecycle-Preference).
    expires_mono: float | None = None


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


class _Req:
    """Simulated state of one submitted request. Guarded by FakeFal._lock."""

    __slots__ = (
        "rid",
        "gateway_id",
        "app",
        "prefix",
        "arguments",
        "webhook_url",
        "outcome",
        "headers",
        "t_submit",
        "wall_submit",
        "t_start",
        "t_done",
        "initial_pos",
        "started",
        "completed",
        "cancelled",
        "completed_mono",
        "completed_wall",
        "result_status",
        "result_body",
        "result_headers",
        "status_error",
        "status_error_type",
        "metrics",
        "urls",
        "video_data",
        "webhook_payload",
    )

    def __init__(self) -> None:
        self.started = False
        self.completed = False
        self.cancelled = False
        self.completed_mono = 0.0
        self.completed_wall = 0.0
        self.result_status = 0
        self.result_body = b""
        self.result_headers: dict[str, str] = {}
        self.status_error: str | None = None
        self.status_error_type: str | None = None
        self.metrics: dict[str, Any] = {}
        self.webhook_payload: bytes | None = None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _kid(key: Ed25519PrivateKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


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


_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive), None (serve whole body) or "unsatisfiable"."""
    if not header or "," in header:
        return None
    match = _RANGE_RE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


# --------------------------------------------------------------------------------------------
# HTTP plumbing


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


# --------------------------------------------------------------------------------------------
# The fake


class FakeFal:
    """Fake fal queue + file + JWKS server on https://127.0.0.1:PORT. See README.md."""

    def __init__(
        self,
        *,
        queue_time: float | Mapping[str, float] | Callable[[str, dict], float] = 0.05,
        inference_time: float | Mapping[str, float] | Callable[[str, dict], float] = 0.2,
        default_outcome: Outcome | None = None,
        outcome_for: Callable[[str, dict], Outcome | None] | None = None,
        prompt_markers: bool = True,
        result_retention_s: float = 3600.0,
        status_retention_s: float | None = None,
        user_id: str = "fakefal-user-1",
        accepted_keys: Iterable[str] | None = None,
        known_apps: Iterable[str] | None = None,
        request_url_style: str = "short",
        strict_app_match: bool = True,
        response_delay_s: float = 0.0,
        cancel_stops_in_progress: bool = True,
        # webhooks
        drop_webhooks: bool = False,
        webhook_duplicates: int = 1,
        webhook_delay_s: float = 0.0,
        webhook_sign_with_unpublished_key: bool = False,
        webhook_timestamp_offset_s: int = 0,
        webhook_retries: int = 0,
        webhook_retry_delay_s: float = 0.5,
        webhook_timeout_s: float = 5.0,
        webhook_workers: int = 8,
        webhook_sender: Callable[[str, dict[str, str], bytes], int] | None = None,
        webhook_on_cancel: bool = True,
        # inputs
        fetch_inputs: bool = False,
        input_fetch_timeout_s: float = 10.0,
        # files
        file_bytes_per_s: float | None = None,
        huge_file_size: int = 64 * 1024 * 1024,
        video: tuple[int, int, float, int] = (320, 180, 1.0, 24),
        # plumbing
        record_requests: bool = True,
        max_recorded: int = 100_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not _is_loopback_host(host):
            raise ValueError("FakeFal only listens on loopback")
        self.queue_time = queue_time
        self.inference_time = inference_time
        self.default_outcome = default_outcome or Outcome.success()
        self.outcome_for = outcome_for
        self.prompt_markers = prompt_markers
        self.result_retention_s = result_retention_s
        self.status_retention_s = status_retention_s
        self.user_id = user_id
        self.accepted_keys = set(accepted_keys) if accepted_keys is not None else None
        self.known_apps = set(known_apps) if known_apps is not None else None
        if request_url_style not in ("short", "full"):
            raise ValueError("request_url_style must be 'short' or 'full'")
        self.request_url_style = request_url_style
        self.strict_app_match = strict_app_match
        self.response_delay_s = response_delay_s
        self.cancel_stops_in_progress = cancel_stops_in_progress
        self.drop_webhooks = drop_webhooks
        self.webhook_duplicates = webhook_duplicates
        self.webhook_delay_s = webhook_delay_s
        self.webhook_sign_with_unpublished_key = webhook_sign_with_unpublished_key
        self.webhook_timestamp_offset_s = webhook_timestamp_offset_s
        self.webhook_retries = webhook_retries
        self.webhook_retry_delay_s = webhook_retry_delay_s
        self.webhook_timeout_s = webhook_timeout_s
        self.webhook_workers = webhook_workers
        self.webhook_sender = webhook_sender
        self.webhook_on_cancel = webhook_on_cancel
        self.fetch_inputs = fetch_inputs
        self.input_fetch_timeout_s = input_fetch_timeout_s
        self.file_bytes_per_s = file_bytes_per_s
        self.huge_file_size = huge_file_size
        self.video = video
        self.record_requests = record_requests
        self._bind_host = host
        self._bind_port = port

        self.errors: list[BaseException] = []  # exceptions inside the fake (should stay empty)
        self.jwks_fetches = 0

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._reqs: dict[str, _Req] = {}
        self._files: dict[str, _File] = {}
        self._queued = 0
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._planned: collections.deque[Outcome] = collections.deque()
        self._injections: dict[str, collections.deque[_Injection]] = {
            k: collections.deque() for k in INJECTABLE
        }
        self._uploads: list[UploadedFile] = []
        self._cdn_tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self._pending_puts: dict[str, tuple[str, str]] = {}  # put id -> (file name, file url)
        self._input_fetches: list[InputFetch] = []
        self._drop_next_webhooks = 0
        self._recorded: collections.deque[RecordedRequest] = collections.deque(maxlen=max_recorded)
        self._recorded_lock = threading.Lock()
        self._deliveries: list[WebhookDelivery] = []
        self._deliveries_cond = threading.Condition()

        self._signing_key = Ed25519PrivateKey.generate()
        self._published: list[Ed25519PrivateKey] = [self._signing_key]
        self._unpublished_key = Ed25519PrivateKey.generate()

        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._sched_thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._http: httpx.Client | None = None
        self._stopping = threading.Event()
        self._port = 0

    # ---------------------------------------------------------------- lifecycle / properties
    def start(self) -> FakeFal:
        if self._server is not None:
            return self
        certs = get_cert_files()
        self.cert_files = certs
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.cert_path, certs.key_path)
        make_mp4(*self.video)  # warm the cache outside any lock
        self._stopping.clear()
        self._server = _Server((self._bind_host, self._bind_port), self, context)
        self._port = self._server.server_address[1]
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.webhook_workers), thread_name_prefix="fakefal-webhook"
        )
        self._http = httpx.Client(
            verify=False,  # noqa: S501 - the targets are the test's own loopback servers
            timeout=self.webhook_timeout_s,
            trust_env=False,
            limits=httpx.Limits(max_connections=max(4, self.webhook_workers * 2)),
        )
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fakefal-http",
            daemon=True,
        )
        self._serve_thread.start()
        self._sched_thread = threading.Thread(
            target=self._scheduler, name="fakefal-scheduler", daemon=True
        )
        self._sched_thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._sched_thread is not None:
            self._sched_thread.join(5)
        if self._serve_thread is not None:
            self._serve_thread.join(5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._http is not None:
            self._http.close()
        self._server = None
        self._pool = None
        self._http = None

    def __enter__(self) -> FakeFal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` - the value for ``FAL_QUEUE_RUN_HOST``."""
        return f"{self._bind_host}:{self._port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def queue_url_format(self) -> str:
        """The value fal_client computes into ``fal_client.client.QUEUE_URL_FORMAT``."""
        return f"https://{self.host}/"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def cert_path(self) -> str:
        """PEM of the throw-away certificate alone (trust anchor)."""
        return get_cert_files().cert_path

    @property
    def ca_bundle_path(self) -> str:
        """The certificate + certifi's roots: the best value for ``SSL_CERT_FILE``."""
        return get_cert_files().bundle_path

    def env(self, key: str = "fake-key-id:fake-key-secret") -> dict[str, str]:
        """Environment variables that point a (child) process's fal_client at this fake."""
        return {
            "FAL_KEY": key,
            "FAL_QUEUE_RUN_HOST": self.host,
            "SSL_CERT_FILE": self.ca_bundle_path,
        }

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the fake (and nothing else)."""
        return ssl.create_default_context(cafile=self.cert_path)

    def http_client(self, **kw: Any) -> httpx.Client:
        """An httpx.Client that trusts the fake, for direct calls in tests."""
        kw.setdefault("timeout", 10.0)
        return httpx.Client(verify=self.ssl_context(), **kw)

    # ---------------------------------------------------------------- knobs (methods)
    def plan_outcomes(self, *outcomes: Outcome) -> None:
        """Queue outcomes for the next submits, first-in first-out (beats every other rule)."""
        with self._lock:
            self._planned.extend(outcomes)

    def fail_next(
        self,
        kind: str,
        n: int = 1,
        *,
        status: int = 503,
        error_type: str | None = "runner_scheduling_failure",
        detail: Any = None,
        mode: str = "fal",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` calls of ``kind`` (one of ``INJECTABLE``) with an error.

        The queue calls are ``submit|status|result|cancel``; fal's uploads are
        ``upload_token`` (CDN token), ``upload`` (the CDN POST), ``upload_initiate`` (storage
        upload) and ``upload_put`` (the signed PUT that follows it).

        ``mode``: ``fal`` - fal-style ``{"detail", "error_type"}`` + ``X-Fal-Error-Type`` +
        ``x-fal-request-id`` (fal_client surfaces it, except 408/409/429 which it retries);
        ``ingress`` - an nginx HTML page without ``x-fal-request-id`` (fal_client retries
        502/503/504 of this shape by itself); ``disconnect`` - close the connection without an
        answer (transport error: fal_client retries); ``raw`` - ``body`` as given.
        """
        if kind not in self._injections:
            raise ValueError(f"kind must be one of {sorted(self._injections)}")
        if mode not in ("fal", "ingress", "disconnect", "raw"):
            raise ValueError("mode must be fal, ingress, disconnect or raw")
        if detail is None:
            detail = _DEFAULT_INFRA_DETAIL.get(error_type or "", "Service unavailable")
        item = _Injection(status, error_type, detail, mode, body, headers)
        with self._lock:
            self._injections[kind].extend([item] * n)

    def fail_next_submits(self, n: int = 1, **kw: Any) -> None:
        self.fail_next("submit", n, **kw)

    def fail_next_status(self, n: int = 1, **kw: Any) -> None:
        self.fail_next("status", n, **kw)

    def fail_next_results(self, n: int = 1, **kw: Any) -> None:
        self.fail_next("result", n, **kw)

    def fail_next_cancels(self, n: int = 1, **kw: Any) -> None:
        self.fail_next("cancel", n, **kw)

    def drop_next_webhooks(self, n: int = 1) -> None:
        """Send no webhook for the next ``n`` requests that complete."""
        with self._lock:
            self._drop_next_webhooks += n

    def rotate_keys(self, *, keep_old: bool = False) -> Ed25519PublicKey:
        """Sign with a fresh key and publish it; drop the old key unless ``keep_old``."""
        key = Ed25519PrivateKey.generate()
        with self._lock:
            self._published = [key, *self._published] if keep_old else [key]
            self._signing_key = key
        return key.public_key()

    def reset(self) -> None:
        """Forget recorded traffic, deliveries, plans and injected failures (not requests)."""
        with self._lock:
            self._planned.clear()
            for queue in self._injections.values():
                queue.clear()
            self._drop_next_webhooks = 0
            self._uploads.clear()
            self._input_fetches.clear()
        with self._recorded_lock:
            self._recorded.clear()
        with self._deliveries_cond:
            self._deliveries.clear()
        self.errors.clear()

    def add_file(
        self,
        name: str,
        data: bytes | None = None,
        *,
        mode: str = "mp4",
        content_type: str | None = None,
        size: int | None = None,
        bytes_per_s: float | None = None,
    ) -> str:
        """Serve a file at ``/files/<name>`` (default: the default MP4); returns its URL."""
        spec = self._make_file(mode, data, size, bytes_per_s)
        if content_type is not None:
            spec.content_type = content_type
        with self._lock:
            self._files[name] = spec
        return self.file_url(name)

    def remove_file(self, name: str) -> None:
        with self._lock:
            self._files.pop(name, None)

    def complete_now(self, request_id: str, outcome: Outcome | None = None) -> None:
        """Finish a request immediately (optionally with a different outcome)."""
        video = (outcome.video or self.video) if outcome else None
        data = make_mp4(*video) if video else None
        with self._cond:
            rec = self._reqs[request_id]
            if rec.completed:
                return
            now = time.monotonic()
            if outcome is not None:
                rec.outcome = outcome
                rec.video_data = data
            if rec.t_start > now:
                rec.t_start = now
            rec.t_done = now
            self._finalize(rec, now)

    def start_now(self, request_id: str) -> None:
        """Move a queued request to IN_PROGRESS now (its inference time starts now)."""
        with self._cond:
            rec = self._reqs[request_id]
            now = time.monotonic()
            if rec.completed or rec.t_start <= now:
                return
            if math.isfinite(rec.t_start):
                inference = rec.t_done - rec.t_start
            else:
                inference = rec.outcome.inference_time
                if inference is None:
                    inference = self._timing(self.inference_time, rec.app, rec.arguments)
            rec.t_start = now
            rec.t_done = now + inference
            self._mark_started(rec)
            if math.isfinite(rec.t_done):
                self._push(rec.t_done, "complete", rec.rid)

    # ---------------------------------------------------------------- introspection
    def _record(self, item: RecordedRequest) -> None:
        with self._recorded_lock:
            self._recorded.append(item)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request received so far, oldest first (copy)."""
        with self._recorded_lock:
            return list(self._recorded)

    def recorded(
        self, kind: str | None = None, *, method: str | None = None, request_id: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (kind is None or r.kind == kind)
            and (method is None or r.method == method)
            and (request_id is None or r.request_id == request_id)
        ]

    def submits(self) -> list[RecordedRequest]:
        return self.recorded("submit")

    @property
    def uploads(self) -> list[UploadedFile]:
        """Every file uploaded (CDN or storage) since the last ``reset()``, oldest first."""
        with self._lock:
            return list(self._uploads)

    @property
    def input_fetches(self) -> list[InputFetch]:
        """Every input URL fetched at submit (``fetch_inputs``) since the last ``reset()``."""
        with self._lock:
            return list(self._input_fetches)

    @property
    def rest_url(self) -> str:
        """The value for ``fal_client.client.REST_URL`` (token and storage uploads)."""
        return self.base_url

    @property
    def cdn_url(self) -> str:
        """The value for ``fal_client.client.CDN_URL`` (the CDN upload)."""
        return self.base_url

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._deliveries_cond:
            return list(self._deliveries)

    def wait_for_webhooks(self, n: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until at least ``n`` delivery attempts were recorded; returns them all."""
        deadline = time.monotonic() + timeout
        with self._deliveries_cond:
            while len(self._deliveries) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._deliveries_cond.wait(remaining)
            return list(self._deliveries)

    def request_ids(self) -> list[str]:
        with self._lock:
            return list(self._reqs)

    def get_request(self, request_id: str) -> dict[str, Any]:
        """Snapshot of one simulated request (app, arguments, webhook_url, state, outcome...)."""
        with self._lock:
            rec = self._reqs[request_id]
            now = time.monotonic()
            state = self._state(rec, now)
            return {
                "request_id": rec.rid,
                "gateway_request_id": rec.gateway_id,
                "app": rec.app,
                "arguments": rec.arguments,
                "webhook_url": rec.webhook_url,
                "headers": rec.headers,
                "state": state,
                "cancelled": rec.cancelled,
                "outcome": rec.outcome,
                "error": rec.status_error,
                "error_type": rec.status_error_type,
                "urls": dict(rec.urls),
            }

    def state_of(self, request_id: str) -> str:
        return self.get_request(request_id)["state"]

    def wait_completed(self, request_id: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state_of(request_id) == "COMPLETED":
                return True
            time.sleep(0.01)
        return False

    def completion_times(self) -> dict[str, float]:
        """Wall-clock time (time.time()) at which each completed request completed."""
        with self._lock:
            return {rid: rec.completed_wall for rid, rec in self._reqs.items() if rec.completed}

    def counts(self) -> dict[str, int]:
        """How many simulated requests are in each state right now."""
        result = {"IN_QUEUE": 0, "IN_PROGRESS": 0, "COMPLETED": 0}
        with self._lock:
            now = time.monotonic()
            for rec in self._reqs.values():
                result[self._state(rec, now)] += 1
        return result

    # ---------------------------------------------------------------- webhook signing
    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self._published)
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(_raw_public(key)),
                    "kid": _kid(key),
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for key in keys
            ]
        }

    @property
    def public_keys(self) -> list[Ed25519PublicKey]:
        with self._lock:
            return [key.public_key() for key in self._published]

    def sign_webhook(
        self,
        request_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        user_id: str | None = None,
        unpublished: bool | None = None,
    ) -> dict[str, str]:
        """The four X-Fal-Webhook-* headers for ``body`` (lets tests forge/replay webhooks)."""
        if timestamp is None:
            timestamp = int(time.time()) + int(self.webhook_timestamp_offset_s)
        user = self.user_id if user_id is None else user_id
        if unpublished is None:
            unpublished = self.webhook_sign_with_unpublished_key
        with self._lock:
            key = self._unpublished_key if unpublished else self._signing_key
        message = f"{request_id}\n{user}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
        }

    def webhook_body(self, request_id: str) -> bytes | None:
        """The webhook body a completed request sends (None before completion)."""
        with self._lock:
            rec = self._reqs[request_id]
            self._state(rec, time.monotonic())
            return rec.webhook_payload

    # ================================================================ internals
    # Everything below that touches _reqs/_files/_heap/_queued runs under self._lock.

    def _push(self, when: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, payload))
        if self._heap[0][0] == when:  # new earliest event: wake the scheduler
            self._cond.notify()

    def _mark_started(self, rec: _Req) -> None:
        if not rec.started:
            rec.started = True
            self._queued -= 1

    def _state(self, rec: _Req, now: float) -> str:
        if rec.completed:
            return "COMPLETED"
        if now >= rec.t_done:
            self._finalize(rec, now)
            return "COMPLETED"
        if now >= rec.t_start:
            self._mark_started(rec)
            return "IN_PROGRESS"
        return "IN_QUEUE"

    def _position(self, rec: _Req, now: float) -> int:
        if not math.isfinite(rec.t_start):
            return rec.initial_pos
        span = rec.t_start - rec.t_submit
        if span <= 0:
            return 0
        return max(0, math.ceil(rec.initial_pos * (rec.t_start - now) / span))

    def _timing(self, value: Any, app: str, arguments: dict) -> float:
        if callable(value):
            return float(value(app, arguments))
        if isinstance(value, Mapping):
            return float(value.get(app, value.get("*", 0.0)))
        return float(value)

    def _choose_outcome(self, app: str, arguments: dict) -> Outcome:
        with self._lock:
            if self._planned:
                return self._planned.popleft()
        if self.outcome_for is not None:
            chosen = self.outcome_for(app, arguments)
            if chosen is not None:
                return chosen
        if self.prompt_markers:
            prompt = arguments.get("prompt")
            if isinstance(prompt, str):
                for marker, make in _PROMPT_MARKERS:
                    if marker in prompt:
                        return make()
        return self.default_outcome

    def _make_file(
        self, mode: str, data: bytes | None, size: int | None, bytes_per_s: float | None
    ) -> _File:
        if mode not in FILE_MODES:
            raise ValueError(f"file mode must be one of {FILE_MODES}")
        video = data if data is not None else make_mp4(*self.video)
        if mode == "mp4":
            return _File(mode, video, len(video), "video/mp4", bytes_per_s)
        if mode == "octet_stream":
            return _File(mode, video, len(video), "application/octet-stream", bytes_per_s)
        if mode == "html":
            page = b"<!doctype html><html><body><h1>Not a video</h1></body></html>\n"
            return _File(mode, page, len(page), "text/html; charset=utf-8", bytes_per_s)
        if mode == "not_video":
            junk = b"this is definitely not an mp4 file\n" * 64
            return _File(mode, junk, len(junk), "video/mp4", bytes_per_s)
        if mode == "huge":
            total = max(size or self.huge_file_size, len(video))
            return _File(mode, video, total, "video/mp4", bytes_per_s)
        if mode == "truncated":
            return _File(mode, video, len(video), "video/mp4", bytes_per_s)
        return _File(mode, b"", 0, "video/mp4", bytes_per_s)  # missing

    def _finalize(self, rec: _Req, now: float) -> None:
        """Complete ``rec`` with its outcome (idempotent). Caller holds the lock."""
        if rec.completed:
            return
        self._mark_started(rec)
        rec.completed = True
        rec.completed_mono = now
        rec.completed_wall = time.time()
        if rec.t_done > now or not math.isfinite(rec.t_done):
            rec.t_done = now
        outcome = rec.outcome
        inference = max(0.0, rec.t_done - min(rec.t_start, rec.t_done))
        queued_cancel = rec.cancelled and rec.t_start >= now
        rec.metrics = {} if queued_cancel else {"inference_time": round(inference, 4)}
        fal_headers = {"x-fal-request-id": rec.rid}
        webhook: dict[str, Any] = {"request_id": rec.rid, "gateway_request_id": rec.gateway_id}
        send_webhook = bool(rec.webhook_url)

        if rec.cancelled:
            body = {"detail": "Request was cancelled", "error_type": "request_cancelled"}
            rec.result_status = 400
            rec.result_body = json.dumps(body).encode()
            rec.result_headers = {"Content-Type": "application/json", **fal_headers}
            rec.status_error, rec.status_error_type = "Request cancelled", "request_cancelled"
            webhook.update(status="ERROR", error="Request cancelled", payload=body)
            send_webhook = send_webhook and self.webhook_on_cancel
        elif outcome.kind in ("success", "never_completes", "stuck_in_queue"):
            name = f"{rec.rid}.mp4"
            spec = self._make_file(
                outcome.file, rec.video_data, outcome.file_size, outcome.bytes_per_s
            )
            spec.expires_mono = _media_expiry(rec.headers, now)
            if outcome.file != "missing":
                self._files[name] = spec
            payload = {
                "video": {
                    "url": self.file_url(name),
                    "content_type": "video/mp4",
                    "file_name": name,
                    "file_size": spec.size,
                }
            }
            if outcome.result_body is not _UNSET:
                payload = outcome.result_body
            rec.result_status = outcome.result_status or 200
            rec.result_body = json.dumps(payload).encode()
            rec.result_headers = {"Content-Type": "application/json", **fal_headers}
            webhook.update(status="OK", payload=payload)
        else:
            status = outcome.result_status or 500
            headers = {**fal_headers}
            if outcome.result_text is not None:
                rec.result_body = outcome.result_text.encode()
                headers["Content-Type"] = "text/html; charset=utf-8"
                payload = None
            else:
                if outcome.result_body is not _UNSET:
                    payload = outcome.result_body
                elif outcome.kind == "infra_error":
                    payload = {"detail": outcome.detail, "error_type": outcome.error_type}
                else:
                    payload = {"detail": outcome.detail}
                rec.result_body = json.dumps(payload).encode()
                headers["Content-Type"] = "application/json"
            if outcome.kind == "infra_error" and outcome.error_type:
                headers["X-Fal-Error-Type"] = outcome.error_type
            rec.result_status = status
            rec.result_headers = headers
            if status >= 400:
                rec.status_error = (
                    outcome.detail
                    if isinstance(outcome.detail, str)
                    else f"Invalid status code: {status}"
                )
                rec.status_error_type = outcome.error_type
                webhook.update(status="ERROR", error=f"Invalid status code: {status}")
            else:
                webhook.update(status="OK")
            webhook["payload"] = payload
            if payload is None:
                webhook["payload_error"] = "Response payload is not valid JSON"
        if outcome.result_headers:
            rec.result_headers.update(outcome.result_headers)
        if outcome.status_error is not _UNSET:
            rec.status_error = outcome.status_error
        if outcome.status_error_type is not _UNSET:
            rec.status_error_type = outcome.status_error_type
        rec.webhook_payload = json.dumps(webhook).encode()

        if send_webhook and self._drop_next_webhooks > 0:
            self._drop_next_webhooks -= 1
            send_webhook = False
        if send_webhook and not self.drop_webhooks:
            when = now + max(0.0, float(self.webhook_delay_s))
            for copy in range(1, max(1, int(self.webhook_duplicates)) + 1):
                self._push(
                    when, "deliver", (rec.rid, rec.webhook_url, rec.webhook_payload, 1, copy)
                )

    def _status_body(self, rec: _Req, state: str, now: float, logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"status": state, "request_id": rec.rid, **rec.urls}
        if state == "IN_QUEUE":
            body["queue_position"] = self._position(rec, now)
            body["logs"] = None
        elif state == "IN_PROGRESS":
            body["logs"] = self._logs(rec, now) if logs else None
        else:
            body["logs"] = self._logs(rec, now) if logs else None
            body["metrics"] = rec.metrics
            if rec.status_error is not None:
                body["error"] = rec.status_error
            if rec.status_error_type is not None:
                body["error_type"] = rec.status_error_type
        return body

    def _logs(self, rec: _Req, now: float) -> list[dict[str, Any]]:
        def entry(message: str, at_mono: float) -> dict[str, Any]:
            wall = rec.wall_submit + (min(at_mono, now) - rec.t_submit)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall))
            return {
                "message": message,
                "level": "INFO",
                "source": "user",
                "timestamp": f"{stamp}.{int((wall % 1) * 1e6):06d}Z",
            }

        if rec.outcome.logs is not None:
            return [entry(message, rec.t_start) for message in rec.outcome.logs]
        if not rec.started or (rec.cancelled and not rec.metrics):
            return []
        out = [entry("Starting video generation", rec.t_start)]
        if rec.completed:
            out.append(entry("Generation finished", rec.completed_mono))
        elif math.isfinite(rec.t_done) and rec.t_done > rec.t_start:
            pct = int(100 * (now - rec.t_start) / (rec.t_done - rec.t_start))
            out.append(entry(f"Generating: {min(99, pct)}%", now))
        return out

    # ---------------------------------------------------------------- request handling
    def _handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[str, str | None, _Resp]:
        if path == "/.well-known/jwks.json" and method in ("GET", "HEAD"):
            with self._lock:
                self.jwks_fetches += 1
            return "jwks", None, _json_resp(200, self.jwks(), {"Cache-Control": "max-age=86400"})
        upload_kind = _upload_kind(method, path)
        if upload_kind is not None:
            return upload_kind, None, self._upload_call(upload_kind, path, query, headers, body)
        if path.startswith("/files/"):
            if method not in ("GET", "HEAD"):
                return "file", None, _json_resp(405, {"detail": "Method not allowed"})
            return "file", None, self._serve_file(path[len("/files/") :], headers)
        segments = [s for s in path.split("/") if s]
        kind, rid, prefix = "unknown", None, ""
        if method == "POST" and len(segments) >= 2:
            kind = "submit"
        elif "requests" in segments[2:]:
            index = len(segments) - 1 - segments[::-1].index("requests")
            prefix = "/".join(segments[:index])
            rest = segments[index + 1 :]
            if method == "GET" and len(rest) == 1:
                kind, rid = "result", rest[0]
            elif method == "GET" and len(rest) == 2 and rest[1] == "status":
                kind, rid = "status", rest[0]
            elif method == "GET" and rest[1:] == ["status", "stream"]:
                kind, rid = "status_stream", rest[0]
            elif method == "PUT" and len(rest) == 2 and rest[1] == "cancel":
                kind, rid = "cancel", rest[0]
        if kind == "unknown":
            return kind, None, _json_resp(404, {"detail": "Not Found"})

        delay = self.response_delay_s
        if delay and delay > 0:
            self._stopping.wait(delay)

        refused = self._check_key(headers)
        if refused is not None:
            return kind, rid, refused

        queue_kind = "status" if kind == "status_stream" else kind
        with self._lock:
            queue = self._injections[queue_kind]
            injection = queue.popleft() if queue else None
        if injection is not None:
            return kind, rid, self._injected(injection, rid)

        if kind == "submit":
            rid, resp = self._submit(segments, query, headers, body)
            return kind, rid, resp
        assert rid is not None
        if kind == "status":
            return kind, rid, self._status(rid, prefix, query)
        if kind == "status_stream":
            return kind, rid, self._status_stream(rid, prefix, query)
        if kind == "result":
            return kind, rid, self._result(rid, prefix)
        return kind, rid, self._cancel(rid, prefix)

    def _check_key(self, headers: dict[str, str]) -> _Resp | None:
        """None if the request carries an accepted ``Authorization: Key ...``, else the 401."""
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "Key" or not token.strip():
            return _json_resp(
                401,
                {"detail": "Missing or invalid Authorization header"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        if self.accepted_keys is not None and token.strip() not in self.accepted_keys:
            return _json_resp(
                401,
                {"detail": "No user found for Key ID and Secret"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        return None

    # ---------------------------------------------------------------- uploads
    def _upload_call(
        self,
        kind: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> _Resp:
        """fal-client 1.0.3's uploads: CDN token + CDN POST, or storage initiate + signed PUT."""
        delay = self.response_delay_s
        if delay and delay > 0:
            self._stopping.wait(delay)
        if kind in ("upload_token", "upload_initiate"):
            refused = self._check_key(headers)
            if refused is not None:
                return refused
        elif kind == "upload":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            with self._lock:
                expiry = self._cdn_tokens.get(token.strip())
            if scheme != "Bearer" or expiry is None or expiry < time.time():
                return _json_resp(401, {"detail": "Invalid or expired upload token"})
        with self._lock:
            queue = self._injections[kind]
            injection = queue.popleft() if queue else None
        if injection is not None:
            return self._injected(injection, None)
        storage_type = (query.get("storage_type") or [""])[0]
        if kind == "upload_token":
            if storage_type != "fal-cdn-v3":
                return _json_resp(400, {"detail": f"Unsupported storage type {storage_type!r}"})
            token = uuid.uuid4().hex
            expires = time.time() + CDN_TOKEN_TTL_S
            with self._lock:
                self._cdn_tokens[token] = expires
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
            return _json_resp(
                200,
                {
                    "token": token,
                    "token_type": "Bearer",
                    "base_url": self.cdn_url,
                    "expires_at": stamp,
                },
            )
        if kind == "upload":
            content_type = headers.get("content-type") or "application/octet-stream"
            name = _upload_name(headers.get("x-fal-file-name"), content_type)
            url = self._store_upload(name, body, content_type, "cdn")
            return _json_resp(
                200,
                {
                    "access_url": url,
                    "content_type": content_type,
                    "file_name": name.rsplit("/", 1)[-1],
                    "file_size": len(body),
                },
            )
        if kind == "upload_initiate":
            if storage_type != "gcs":
                return _json_resp(400, {"detail": f"Unsupported storage type {storage_type!r}"})
            try:
                spec = json.loads(body)
                content_type = str(spec["content_type"])
                file_name = spec.get("file_name")
            except (ValueError, KeyError, TypeError):
                return _json_resp(422, {"detail": "Expected {file_name, content_type}"})
            name = _upload_name(file_name, content_type)
            put_id = uuid.uuid4().hex
            with self._lock:
                self._pending_puts[put_id] = (name, content_type)
            return _json_resp(
                200,
                {
                    "upload_url": f"{self.base_url}/storage/put/{put_id}"
                    f"?X-Goog-Expires=3600&X-Goog-Signature={uuid.uuid4().hex}",
                    "file_url": self.file_url(name),
                },
            )
        # upload_put: the signed URL storage handed out (no fal auth: the URL is the grant)
        put_id = path[len("/storage/put/") :]
        with self._lock:
            pending = self._pending_puts.pop(put_id, None)
        if pending is None:
            return _Resp(403, b"SignatureDoesNotMatch", {"Content-Type": "text/plain"})
        name, declared = pending
        self._store_upload(name, body, headers.get("content-type") or declared, "storage")
        return _Resp(200, b"")

    def _store_upload(self, name: str, data: bytes, content_type: str, via: str) -> str:
        url = self.file_url(name)
        spec = _File("upload", data, len(data), content_type)
        with self._lock:
            self._files[name] = spec
            upload = UploadedFile(url, data, content_type, name.rsplit("/", 1)[-1], via)
            self._uploads.append(upload)
        return url

    # ---------------------------------------------------------------- input fetching
    def _fetch_inputs(self, rid: str, arguments: dict) -> Outcome | None:
        """GET each input URL like fal's runner; fal's 422 for the first one it cannot read."""
        failed: Outcome | None = None
        for label, loc, url in _input_urls(arguments):
            fetch = self._fetch_input(rid, label, url)
            with self._lock:
                self._input_fetches.append(fetch)
            refused = (fetch.error or "").startswith("refused")
            if failed is None and not fetch.ok and not refused:
                failed = Outcome.validation_error(
                    FILE_DOWNLOAD_ERROR, loc=loc, type="file_download_error"
                )
        return failed

    def _fetch_input(self, rid: str, label: str, url: str) -> InputFetch:
        if not _is_loopback_host(urlsplit(url).hostname):
            return InputFetch(rid, label, url, None, error="refused: fakefal only fetches loopback")
        http = self._http
        if http is None:
            return InputFetch(rid, label, url, None, error="fake stopped")
        digest = hashlib.sha256()
        size = 0
        try:
            with http.stream("GET", url, timeout=self.input_fetch_timeout_s) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > INPUT_FETCH_MAX_BYTES:
                        return InputFetch(
                            rid, label, url, response.status_code, size, error="too large"
                        )
                    digest.update(chunk)
                return InputFetch(
                    rid,
                    label,
                    url,
                    response.status_code,
                    size,
                    digest.hexdigest(),
                    response.headers.get("content-type", ""),
                )
        except httpx.HTTPError as exc:
            return InputFetch(rid, label, url, None, error=f"{type(exc).__name__}: {exc}")

    def _injected(self, item: _Injection, rid: str | None) -> _Resp:
        if item.mode == "disconnect":
            resp = _Resp(0)
            resp.drop = True
            return resp
        if item.mode == "ingress":
            page = (
                f"<html>\r\n<head><title>{item.status} Service Temporarily Unavailable</title>"
                f"</head>\r\n<body>\r\n<center><h1>{item.status}</h1></center>\r\n"
                "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            )
            return _Resp(item.status, page.encode(), {"Content-Type": "text/html"})
        headers = {"x-fal-request-id": rid or str(uuid.uuid4())}
        if item.error_type:
            headers["X-Fal-Error-Type"] = item.error_type
        if item.headers:
            headers.update(item.headers)
        if item.mode == "raw":
            if isinstance(item.body, bytes | str):
                raw = item.body.encode() if isinstance(item.body, str) else item.body
                return _Resp(item.status, raw, {"Content-Type": "text/plain", **headers})
            return _json_resp(item.status, item.body, headers)
        body: dict[str, Any] = {"detail": item.detail}
        if item.error_type:
            body["error_type"] = item.error_type
        return _json_resp(item.status, body, headers)

    def _submit(
        self,
        segments: list[str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[str | None, _Resp]:
        app = "/".join(segments)
        if self.known_apps is not None and app not in self.known_apps:
            return None, _json_resp(
                404,
                {"detail": f"Application '{app}' not found"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        try:
            arguments = json.loads(body) if body else {}
        except ValueError:
            return None, _json_resp(
                422,
                {"detail": "Request body is not valid JSON"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        if not isinstance(arguments, dict):
            arguments = {"_body": arguments}
        webhook_url = (query.get("fal_webhook") or [None])[0] or None

        rid = str(uuid.uuid4())
        outcome = self._fetch_inputs(rid, arguments) if self.fetch_inputs else None
        if outcome is None:
            outcome = self._choose_outcome(app, arguments)
        queue_time = outcome.queue_time
        if queue_time is None:
            queue_time = self._timing(self.queue_time, app, arguments)
        inference = outcome.inference_time
        if inference is None:
            inference = self._timing(self.inference_time, app, arguments)
        video_data = make_mp4(*outcome.video) if outcome.video else None

        head = 3 if segments[0] in APP_NAMESPACES else 2
        short = "/".join(segments[:head])
        rec = _Req()
        rec.rid = rid
        rec.gateway_id = str(uuid.uuid4())
        rec.app = app
        rec.prefix = short
        rec.arguments = arguments
        rec.webhook_url = webhook_url
        rec.outcome = outcome
        rec.headers = headers
        rec.video_data = video_data
        base = f"{self.base_url}/{short if self.request_url_style == 'short' else app}"
        base += f"/requests/{rec.rid}"
        rec.urls = {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        now = time.monotonic()
        rec.t_submit = now
        rec.wall_submit = time.time()
        rec.t_start = now + max(0.0, queue_time)
        rec.t_done = rec.t_start + max(0.0, inference)
        with self._cond:
            rec.initial_pos = (
                outcome.queue_position if outcome.queue_position is not None else (self._queued)
            )
            self._queued += 1
            self._reqs[rec.rid] = rec
            if math.isfinite(rec.t_start):
                self._push(rec.t_start, "start", rec.rid)
            if math.isfinite(rec.t_done):
                self._push(rec.t_done, "complete", rec.rid)
            position = self._position(rec, now)
        answer = {
            "status": "IN_QUEUE",
            "request_id": rec.rid,
            **rec.urls,
            "queue_position": position,
            "gateway_request_id": rec.gateway_id,
        }
        return rec.rid, _json_resp(200, answer, {"x-fal-request-id": rec.rid})

    def _lookup(self, rid: str, prefix: str, now: float) -> _Req | None:
        """The record if it exists, is addressed by its own app and is not expired (locked)."""
        rec = self._reqs.get(rid)
        if rec is None:
            return None
        if self.strict_app_match and prefix not in (rec.prefix, rec.app):
            return None
        if (
            self.status_retention_s is not None
            and self._state(rec, now) == "COMPLETED"
            and now - rec.completed_mono > self.status_retention_s
        ):
            return None
        return rec

    def _not_found(self, rid: str) -> _Resp:
        return _json_resp(404, {"detail": f"Request {rid} not found"}, {"x-fal-request-id": rid})

    def _status(self, rid: str, prefix: str, query: dict[str, list[str]]) -> _Resp:
        logs = _truthy((query.get("logs") or ["0"])[0])
        with self._lock:
            now = time.monotonic()
            rec = self._lookup(rid, prefix, now)
            if rec is None:
                return self._not_found(rid)
            state = self._state(rec, now)
            body = self._status_body(rec, state, now, logs)
        return _json_resp(200 if state == "COMPLETED" else 202, body, {"x-fal-request-id": rid})

    def _status_stream(self, rid: str, prefix: str, query: dict[str, list[str]]) -> _Resp:
        logs = _truthy((query.get("logs") or ["0"])[0])
        with self._lock:
            if self._lookup(rid, prefix, time.monotonic()) is None:
                return self._not_found(rid)

        def stream(wfile: Any) -> None:
            deadline = time.monotonic() + 120.0
            while not self._stopping.is_set() and time.monotonic() < deadline:
                with self._lock:
                    now = time.monotonic()
                    rec = self._reqs[rid]
                    state = self._state(rec, now)
                    body = self._status_body(rec, state, now, logs)
                wfile.write(f"data: {json.dumps(body)}\n\n".encode())
                if state == "COMPLETED":
                    return
                self._stopping.wait(0.1)

        resp = _Resp(
            200,
            b"",
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-fal-request-id": rid,
            },
        )
        resp.stream = stream
        return resp

    def _result(self, rid: str, prefix: str) -> _Resp:
        with self._lock:
            now = time.monotonic()
            rec = self._lookup(rid, prefix, now)
            if rec is None:
                return self._not_found(rid)
            state = self._state(rec, now)
            if state != "COMPLETED":
                return _json_resp(
                    400, {"detail": "Request is still in progress"}, {"x-fal-request-id": rid}
                )
            if now - rec.completed_mono > self._result_retention(rec):
                return self._not_found(rid)
            resp = _Resp(rec.result_status, rec.result_body, dict(rec.result_headers))
        return resp

    def _result_retention(self, rec: _Req) -> float:
        """fal keeps a result 1 h (6 min when 10 KB or more) unless payloads are stored; with
        `X-Fal-Store-IO: 0` nothing is stored, so the short limits apply whatever the knob."""
        if rec.headers.get("x-fal-store-io") != "0":
            return self.result_retention_s
        short = 360.0 if len(rec.result_body) >= 10_000 else 3600.0
        return min(self.result_retention_s, short)

    def _cancel(self, rid: str, prefix: str) -> _Resp:
        headers = {"x-fal-request-id": rid}
        with self._cond:
            now = time.monotonic()
            rec = self._lookup(rid, prefix, now)
            if rec is None:
                return _json_resp(
                    404, {"status": "NOT_FOUND", "detail": "Request not found"}, headers
                )
            state = self._state(rec, now)
            if state == "COMPLETED":
                return _json_resp(400, {"status": "ALREADY_COMPLETED"}, headers)
            if state == "IN_QUEUE" or self.cancel_stops_in_progress:
                rec.cancelled = True
                self._finalize(rec, now)
        return _json_resp(202, {"status": "CANCELLATION_REQUESTED"}, headers)

    # ---------------------------------------------------------------- files
    def _serve_file(self, name: str, headers: dict[str, str]) -> _Resp:
        with self._lock:
            spec = self._files.get(name)
        if spec is None or spec.mode == "missing":
            return _Resp(404, b"Not Found", {"Content-Type": "text/plain"})
        if spec.expires_mono is not None and time.monotonic() >= spec.expires_mono:
            return _Resp(404, b"Not Found", {"Content-Type": "text/plain"})
        size = spec.size
        rng = _parse_range(headers.get("range"), size)
        out_headers = {"Content-Type": spec.content_type, "Accept-Ranges": "bytes"}
        if rng == "unsatisfiable":
            out_headers["Content-Range"] = f"bytes */{size}"
            return _Resp(416, b"", out_headers)
        if rng is None:
            status, start, end = 200, 0, size - 1
        else:
            status, (start, end) = 206, rng  # type: ignore[misc]
            out_headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        out_headers["Content-Length"] = str(length)
        rate = spec.bytes_per_s or self.file_bytes_per_s
        stop_at = length // 2 if spec.mode == "truncated" else length

        def stream(wfile: Any) -> None:
            began = time.monotonic()
            sent = 0
            piece = 65536 if not rate else max(512, min(65536, int(rate / 20)))
            for chunk in _file_chunks(spec, start, start + stop_at, piece):
                if self._stopping.is_set():
                    raise ConnectionResetError("fake stopping")
                if rate:
                    ahead = (sent + len(chunk)) / rate - (time.monotonic() - began)
                    if ahead > 0 and self._stopping.wait(ahead):
                        raise ConnectionResetError("fake stopping")
                wfile.write(chunk)
                sent += len(chunk)
            if stop_at < length:
                raise ConnectionResetError("truncated on purpose")

        resp = _Resp(status, b"", out_headers)
        resp.stream = stream
        return resp

    # ---------------------------------------------------------------- scheduler + webhooks
    def _scheduler(self) -> None:
        while not self._stopping.is_set():
            due: list[tuple[str, Any]] = []
            with self._cond:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, kind, payload = heapq.heappop(self._heap)
                    if kind == "start":
                        rec = self._reqs.get(payload)
                        if rec is not None and rec.t_start <= now:
                            self._mark_started(rec)
                    elif kind == "complete":
                        rec = self._reqs.get(payload)
                        if rec is not None and not rec.completed and rec.t_done <= now:
                            self._finalize(rec, now)
                    else:
                        due.append((kind, payload))
                if not due:
                    wait = 0.5
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0][0] - now))
                    self._cond.wait(wait)
                    continue
            pool = self._pool
            for _, payload in due:
                if pool is None or self._stopping.is_set():
                    break
                try:
                    pool.submit(self._deliver, *payload)
                except RuntimeError:  # pool shut down while stopping
                    break

    def _deliver(self, rid: str, url: str, body: bytes, attempt: int, copy: int) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "fakefal-webhooks/1.0"}
        headers.update(self.sign_webhook(rid, body))
        status: int | None = None
        error: str | None = None
        try:
            if self.webhook_sender is not None:
                status = int(self.webhook_sender(url, headers, body))
            elif not _is_loopback_host(urlsplit(url).hostname):
                error = "refused: fakefal only delivers webhooks to loopback addresses"
            elif self._http is None:
                error = "fake stopped"
            else:
                status = self._http.post(url, content=body, headers=headers).status_code
        except Exception as exc:  # transport errors, or the custom sender raising
            error = f"{type(exc).__name__}: {exc}"
        delivery = WebhookDelivery(url, rid, body, headers, status, error, attempt, copy)
        with self._deliveries_cond:
            self._deliveries.append(delivery)
            self._deliveries_cond.notify_all()
        failed = status is None or not 200 <= status < 300
        refused = error is not None and error.startswith("refused")
        if failed and not refused and attempt <= int(self.webhook_retries):
            with self._cond:
                when = time.monotonic() + float(self.webhook_retry_delay_s) * (2 ** (attempt - 1))
                self._push(when, "deliver", (rid, url, body, attempt + 1, copy))


def _media_expiry(headers: dict[str, str], now: float) -> float | None:
    """When generated media expires under the submit's X-Fal-Object-Lifecycle-Preference
    (`{"expiration_duration_seconds": N}`; null or absent: fal's default, never here)."""
    raw = headers.get("x-fal-object-lifecycle-preference")
    if not raw:
        return None
    try:
        seconds = json.loads(raw).get("expiration_duration_seconds")
    except (ValueError, AttributeError):
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    return now + max(0.0, float(seconds))


def _file_chunks(spec: _File, start: int, stop: int, piece: int) -> Iterator[bytes]:
    """Bytes [start, stop) of a file; ``huge`` files are the MP4 followed by zero padding."""
    data = spec.data
    position = start
    zeros = bytes(piece)
    while position < stop:
        take = min(piece, stop - position)
        if position < len(data):
            take = min(take, len(data) - position)
            yield data[position : position + take]
        else:
            yield zeros[:take]
        position += take


_PROMPT_MARKERS: list[tuple[str, Callable[[], Outcome]]] = [
    ("fail-422", Outcome.validation_error),
    ("fail-policy", Outcome.content_policy),
    ("fail-malformed", Outcome.malformed),
    ("fail-nonjson", Outcome.non_json),
    ("fail-timeout", lambda: Outcome.infra_error("request_timeout")),
    ("fail-runner", lambda: Outcome.infra_error("runner_disconnected")),
    ("fail-infra", lambda: Outcome.infra_error("runner_scheduling_failure")),
    ("fail-file-html", lambda: Outcome.bad_file("html")),
    ("fail-file-notvideo", lambda: Outcome.bad_file("not_video")),
    ("fail-file-huge", lambda: Outcome.bad_file("huge")),
    ("fail-file-missing", lambda: Outcome.bad_file("missing")),
    ("never-complete", Outcome.never_completes),
    ("stuck-in-queue", Outcome.stuck_in_queue),
]


def _upload_kind(method: str, path: str) -> str | None:
    if method == "POST" and path == "/storage/auth/token":
        return "upload_token"
    if method == "POST" and path == "/files/upload":
        return "upload"
    if method == "POST" and path == "/storage/upload/initiate":
        return "upload_initiate"
    if method == "PUT" and path.startswith("/storage/put/"):
        return "upload_put"
    return None


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _upload_name(file_name: str | None, content_type: str) -> str:
    """``uploads/<random>/<name>``: a fresh path per upload, like fal's CDN."""
    name = _SAFE_NAME.sub("_", (file_name or "").rsplit("/", 1)[-1]).strip("._")
    if not name:
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = f"upload{extension}"
    return f"uploads/{uuid.uuid4().hex[:16]}/{name}"


def _input_urls(arguments: dict) -> Iterator[tuple[str, tuple[Any, ...], str]]:
    """(label, 422 loc, url) of every http(s) ``*_url`` / ``*_urls`` argument."""

    def is_url(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(("https://", "http://"))

    for key, value in arguments.items():
        if key.endswith("_url") and is_url(value):
            yield key, ("body", key), value
        elif key.endswith("_urls") and isinstance(value, list):
            for index, item in enumerate(value):
                if is_url(item):
                    yield f"{key}[{index}]", ("body", key, index), item
