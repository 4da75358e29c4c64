"""The simulated fal runner: picks each request's outcome, fetches its input URLs
(``fetch_inputs``) and produces its result, files and webhook body when it completes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from .records import _UNSET, FILE_MODES, InputFetch, Outcome, _File, _Req
from .transport import _is_loopback_host
from .video import make_mp4

#: What fal answers when its runner cannot download an input URL (a 422 like validation).
FILE_DOWNLOAD_ERROR = "Failed to download the file. Please check if the URL is accessible."


INPUT_FETCH_MAX_BYTES = 64 * 1024 * 1024


class Runner:
    """What ``FakeFal``'s runner does with a request: outcome, input fetches, result.

    Uses ``FakeFal``'s ``_planned``, ``_input_fetches``, ``_files`` and ``_drop_next_webhooks``
    under ``_lock``, and its ``_http`` client; schedules through ``QueueSimulation._push``.
    """

    @property
    def input_fetches(self) -> list[InputFetch]:
        """Every input URL fetched at submit (``fetch_inputs``) since the last ``reset()``."""
        with self._lock:
            return list(self._input_fetches)

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
        if outcome.fal_retries > 0 and not rec.cancelled:
            # fal ran it again on another runner: the last run answers under its own id.
            rec.gateway_id = str(uuid.uuid4())
            self._by_gateway[rec.gateway_id] = rec.rid
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
        if send_webhook and self._roll(self.webhook_drop_rate):
            self.chaos_counts["webhook dropped"] += 1
            send_webhook = False
        if send_webhook and not self.drop_webhooks:
            when = now + max(0.0, float(self.webhook_delay_s))
            copies = max(1, int(self.webhook_duplicates))
            for copy in range(1, copies + 1):
                self._push(
                    when, "deliver", (rec.rid, rec.webhook_url, rec.webhook_payload, 1, copy)
                )
            if self._roll(self.webhook_duplicate_rate):
                # fal delivered it again although we answered: the same body, a little later.
                self.chaos_counts["webhook duplicated"] += 1
                again = when + self._chaos_random.uniform(0.0, 1.0)
                delivery = (rec.rid, rec.webhook_url, rec.webhook_payload, 1, copies + 1)
                self._push(again, "deliver", delivery)


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
