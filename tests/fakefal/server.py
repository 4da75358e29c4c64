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

The concerns live in their own modules and ``FakeFal`` composes them (one level of mixins over
one shared lock and state): ``records`` (value types), ``transport`` (HTTPS plumbing),
``queueing`` (queue calls + the clock), ``runner`` (outcomes, input fetching, results),
``storage`` (files and uploads) and ``webhooks`` (keys, signing, delivery). This module holds
the lifecycle, the routing, auth, failure injection and the recorded traffic.
"""

from __future__ import annotations

import collections
import itertools
import random
import ssl
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .certs import get_cert_files
from .queueing import QueueSimulation
from .records import (
    _DEFAULT_INFRA_DETAIL,
    FAL_TRANSIENT_ERRORS,
    INJECTABLE,
    TRANSIENT_KINDS,
    InputFetch,
    Outcome,
    RecordedRequest,
    TransientError,
    UploadedFile,
    WebhookDelivery,
    _File,
    _Injection,
    _Req,
)
from .runner import Runner
from .storage import Storage, _upload_kind
from .transport import _is_loopback_host, _json_resp, _Resp, _Server
from .video import make_mp4
from .webhooks import Webhooks

__all__ = ["FakeFal"]  # the value types are in records.py; tests.fakefal exports both


class FakeFal(QueueSimulation, Runner, Storage, Webhooks):
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
        # chaos: random faults at given rates (see README "Chaos")
        transient_error_rate: float = 0.0,
        transient_errors: Iterable[TransientError] = FAL_TRANSIENT_ERRORS,
        ambiguous_submit_rate: float = 0.0,
        webhook_drop_rate: float = 0.0,
        webhook_duplicate_rate: float = 0.0,
        chaos_seed: int | None = None,
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
        self.transient_error_rate = transient_error_rate
        self.transient_errors = tuple(transient_errors)
        self.ambiguous_submit_rate = ambiguous_submit_rate
        self.webhook_drop_rate = webhook_drop_rate
        self.webhook_duplicate_rate = webhook_duplicate_rate
        self._chaos_random = random.Random(chaos_seed)
        # What the chaos knobs did, by kind: "submit 503 ingress", "webhook dropped", ...
        self.chaos_counts: collections.Counter[str] = collections.Counter()
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
        self._by_gateway: dict[str, str] = {}  # a fal-side retry's gateway id -> request id
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

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the fake (and nothing else)."""
        return ssl.create_default_context(cafile=self.cert_path)

    def http_client(self, **kw: Any) -> httpx.Client:
        """An httpx.Client that trusts the fake, for direct calls in tests."""
        kw.setdefault("timeout", 10.0)
        return httpx.Client(verify=self.ssl_context(), **kw)

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
        hold_s: float = 0.0,
    ) -> None:
        """Answer the next ``n`` calls of ``kind`` (one of ``INJECTABLE``) with an error.

        The queue calls are ``submit|status|result|cancel``; fal's uploads are
        ``upload_token`` (CDN token), ``upload`` (the CDN POST), ``upload_initiate`` (storage
        upload) and ``upload_put`` (the signed PUT that follows it).

        ``mode``: ``fal`` - fal-style ``{"detail", "error_type"}`` + ``X-Fal-Error-Type`` +
        ``x-fal-request-id`` (fal_client surfaces it, except 408/409/429 which it retries);
        ``ingress`` - an nginx HTML page without ``x-fal-request-id`` (fal_client retries
        502/503/504 of this shape by itself); ``disconnect`` - close the connection without an
        answer (transport error: fal_client retries); ``raw`` - ``body`` as given; ``lost``
        (submit only) - the submit IS accepted (the request is queued and will run, a paid
        job), then the connection is dropped after ``hold_s`` seconds without the answer: a
        reset, or with ``hold_s`` beyond the client's read timeout, a timeout.
        """
        if kind not in self._injections:
            raise ValueError(f"kind must be one of {sorted(self._injections)}")
        if mode not in ("fal", "ingress", "disconnect", "raw", "lost"):
            raise ValueError("mode must be fal, ingress, disconnect, raw or lost")
        if mode == "lost" and kind != "submit":
            raise ValueError("mode lost is for submits")
        if detail is None:
            detail = _DEFAULT_INFRA_DETAIL.get(error_type or "", "Service unavailable")
        item = _Injection(status, error_type, detail, mode, body, headers, hold_s)
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

    def reset(self) -> None:
        """Forget recorded traffic, deliveries, plans and injected failures (not requests)."""
        with self._lock:
            self._planned.clear()
            for queue in self._injections.values():
                queue.clear()
            self._drop_next_webhooks = 0
            self.chaos_counts.clear()
            self._uploads.clear()
            self._input_fetches.clear()
        with self._recorded_lock:
            self._recorded.clear()
        with self._deliveries_cond:
            self._deliveries.clear()
        self.errors.clear()

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
            if injection is None:
                injection = self._chaos_injection(kind)
        if injection is not None and injection.mode == "lost":
            rid, resp = self._submit(segments, query, headers, body)
            if injection.hold_s > 0:
                self._stopping.wait(injection.hold_s)
            lost = _Resp(0)
            lost.drop = True
            return kind, rid, lost
        if injection is not None:
            return kind, rid, self._injected(injection, rid)

        if kind == "submit":
            rid, resp = self._submit(segments, query, headers, body)
            with self._lock:
                lost = resp.status == 200 and self._roll(self.ambiguous_submit_rate)
                if lost:
                    self.chaos_counts["submit accepted, answer lost"] += 1
            if lost:
                # fal queued (and will bill) the job, but its answer never reaches the client:
                # the ambiguous submit of fal-protocol.md "Errors and built-in retries".
                resp = _Resp(0)
                resp.drop = True
            return kind, rid, resp
        assert rid is not None
        if kind == "status":
            return kind, rid, self._status(rid, prefix, query)
        if kind == "status_stream":
            return kind, rid, self._status_stream(rid, prefix, query)
        if kind == "result":
            return kind, rid, self._result(rid, prefix)
        return kind, rid, self._cancel(rid, prefix)

    def _roll(self, rate: float) -> bool:
        """True with probability `rate` (the fake's own seeded random). Caller holds the lock."""
        return rate > 0 and self._chaos_random.random() < rate

    def _chaos_injection(self, kind: str) -> _Injection | None:
        """A random transient error for this queue call (``transient_error_rate``). Locked."""
        if kind not in TRANSIENT_KINDS or not self.transient_errors:
            return None
        if not self._roll(self.transient_error_rate):
            return None
        error = self._chaos_random.choice(self.transient_errors)
        self.chaos_counts[" ".join(filter(None, [kind, str(error.status or ""), error.mode]))] += 1
        detail = error.detail or _DEFAULT_INFRA_DETAIL.get(error.error_type or "", "Unavailable")
        return _Injection(error.status, error.error_type, detail, error.mode)

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
