"""The fake's value types: outcomes, recorded traffic, injections and simulated requests.

Plain data, no behaviour beyond small accessors; every other module of the fake imports these.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class TransientError:
    """One kind of transient failure of a queue call, as fal answers it (``fail_next`` args)."""

    status: int
    mode: str = "fal"  # fal | ingress | disconnect (see FakeFal.fail_next)
    error_type: str | None = None
    detail: str | None = None


#: What ``transient_error_rate`` picks from, evenly: the transient answers fal's queue gives
#: (fal-protocol.md "Errors and built-in retries"): its own 503 and 500 with an error_type and
#: ``x-fal-request-id``, a 429, the ingress's nginx 502/503/504 pages, and a dropped connection.
FAL_TRANSIENT_ERRORS: tuple[TransientError, ...] = (
    TransientError(503, "fal", "runner_scheduling_failure"),
    TransientError(500, "fal", "internal_error"),
    TransientError(429, "fal", None, "Too many requests: concurrent request limit reached"),
    TransientError(502, "ingress"),
    TransientError(503, "ingress"),
    TransientError(504, "ingress"),
    TransientError(0, "disconnect"),
)

#: The queue calls ``transient_error_rate`` applies to.
TRANSIENT_KINDS = ("submit", "status", "status_stream", "result", "cancel")


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
    # fal retried the request on its side this many times (a runner failed): the webhook and
    # the COMPLETED status carry the last run's gateway_request_id, and the result is served
    # under that id only (users report it unreachable under request_id: fal-ai/fal#703).
    fal_retries: int = 0

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


@dataclass
class _Injection:
    status: int
    error_type: str | None
    detail: Any
    mode: str  # fal | ingress | disconnect | raw | lost
    body: Any = None
    headers: Mapping[str, str] | None = None
    hold_s: float = 0.0  # lost: wait this long before dropping the connection


@dataclass
class _File:
    mode: str
    data: bytes
    size: int
    content_type: str
    bytes_per_s: float | None = None
    # Monotonic time after which fal's CDN has deleted it (X-Fal-Object-Lifecycle-Preference).
    expires_mono: float | None = None


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
