"""The fal.ai backend: fal-client 1.0.3 against fal's queue API, never blocking on a job.

Only single, quick calls are made: submit, one status poll, one result fetch, cancel. The
blocking helpers (`subscribe`, `handle.get`, `SyncClient.result`) are never used.
"""

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlsplit

import fal_client
import fal_client.client as fal_internals
import httpx
from django.conf import settings
from django.core.files.storage import default_storage

from core.safe_fetch import FetchRefused, open_stream

from ..delivery import is_s3
from .base import SUBMIT_UNCONFIRMED, Completed, Progress, ProviderError, Submitted

# fal-client retries failed calls up to 10 times, sleeping up to 30 s between tries. Our
# pipeline retries with its own counted back-off instead, so that no worker sleeps on fal.
# It matters most for the submit: fal-client would send the POST again after a read timeout or
# a reset, when the first one may have reached fal, and a second paid job would start. With one
# attempt such a submit surfaces as SUBMIT_UNCONFIRMED and is reconciled
# (workflows.pipeline.generation_submit). Only its connect fallback to fal's backup domain
# stays: a failed connect sent nothing.
fal_internals.MAX_ATTEMPTS = 1

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CALL_TIMEOUT = 30.0  # fal-client's timeout for a submit (a submit that outlives it: unconfirmed)
CHUNK = 1024 * 1024
INFRASTRUCTURE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
# A 200 MB video over a slow CDN link; the stream enforces it as one total deadline.
DOWNLOAD_TIMEOUT = 600.0
PRESIGNED_INPUT_TTL = 60 * 60 * 6  # fal may hold a job in its queue for hours


@cache
def _client() -> fal_client.SyncClient:
    """fal-client's client, with our hook on its httpx client (made here, so the credentials
    are needed here: call it inside `_errors`)."""
    client = fal_client.SyncClient(key=settings.FAL_KEY or None, default_timeout=CALL_TIMEOUT)
    http = client._client
    hooks = http.event_hooks
    http.event_hooks = {**hooks, "response": [*hooks["response"], _keep_answer]}
    return client


# fal's submit answer carries the queue position and gateway_request_id, a status answer may
# carry gateway_request_id, but fal-client parses them and drops both (its handle and status
# objects have ids, URLs, logs and metrics only). A response hook on fal-client's own httpx
# client keeps the answers that arrive on this thread while `_answers_kept` is open.
_answers = threading.local()


def _keep_answer(response: httpx.Response) -> None:
    kept = getattr(_answers, "kept", None)
    if kept is None:
        return
    response.read()  # fal-client reads it next; the body is kept on the response
    kept.append(response)


@contextmanager
def _answers_kept() -> Iterator[list[httpx.Response]]:
    kept: list[httpx.Response] = []
    _answers.kept = kept
    try:
        yield kept
    finally:
        _answers.kept = None


def _answer_for(answers: list[httpx.Response], request_id: str) -> dict:
    """The kept answer about `request_id` (the last one), or {}."""
    for response in reversed(answers):
        body = _json(response)
        if isinstance(body, dict) and body.get("request_id") == request_id:
            return body
    return {}


def _queue_position(body: dict) -> int | None:
    """The queue position of a submit answer, if it gave a sensible one."""
    position = body.get("queue_position")
    if isinstance(position, int) and not isinstance(position, bool) and position >= 0:
        return position
    return None


def gateway_id(body: dict, request_id: str) -> str:
    """fal's gateway_request_id when it names another run than `request_id` (a fal-side
    retry, shared/fal-protocol.md section 1), else ""."""
    value = body.get("gateway_request_id") if isinstance(body, dict) else None
    if isinstance(value, str) and value and value != request_id and len(value) <= 100:
        return value
    return ""


class FalBackend:
    name = "fal"

    def submit(self, generation, *, webhook_url: str | None) -> Submitted:
        arguments = dict(generation.arguments)
        endpoint = _endpoint(generation.endpoint_id)
        inputs = list(generation.inputs.all())  # ordered by position: the order the user gave
        if endpoint.media_field in ("image_url", "image_urls"):
            images = [self._input_url(item) for item in inputs if item.kind == "image"]
            if endpoint.media_field == "image_url" and images:
                arguments["image_url"] = images[0]
            elif endpoint.media_field == "image_urls":
                arguments["image_urls"] = images
        if endpoint.video_field:
            videos = [self._input_url(item) for item in inputs if item.kind == "video"]
            if videos:
                arguments[endpoint.video_field] = videos[0]
        with _errors("submit"), _answers_kept() as answers:
            handle = _client().submit(
                generation.endpoint_id,
                arguments,
                webhook_url=webhook_url,
                headers=privacy_headers(),
                # fal ends a request that has not started by then, unbilled: the bound on how
                # long a lost submit can still become a paid job (FAL_SUBMIT_RECONCILE_SECONDS).
                start_timeout=settings.FAL_START_TIMEOUT_SECONDS,
            )
        answer = _answer_for(answers, handle.request_id)
        return Submitted(
            request_id=handle.request_id,
            queue_position=_queue_position(answer),
            gateway_request_id=gateway_id(answer, handle.request_id),
            urls={
                "status_url": handle.status_url,
                "response_url": handle.response_url,
                "cancel_url": handle.cancel_url,
            },
            arguments=arguments,
        )

    def _input_url(self, item) -> str:
        """A URL fal can fetch without our credentials: presigned on S3, else fal's upload."""
        if is_s3():
            return default_storage.url(item.file.name, expire=PRESIGNED_INPUT_TTL)
        try:
            with default_storage.open(item.file.name, "rb") as stream:
                data = stream.read()
        except FileNotFoundError as exc:
            raise ProviderError(
                "input_missing", f"The input {item.kind} is no longer stored.", retryable=False
            ) from exc
        try:
            with _errors("upload"):
                # fal-client tries fal's CDN, then fal's storage (initiate + signed PUT).
                return _client().upload(
                    data,
                    item.content_type,
                    file_name=os.path.basename(item.file.name),
                    lifecycle=_upload_lifecycle(),
                )
        except ProviderError as exc:
            if exc.code == "provider_auth":
                raise
            raise ProviderError(
                "upload_failed",
                f"Uploading the input {item.kind} to fal failed: {exc.message}",
                retryable=exc.retryable,
            ) from exc

    def _handle(self, generation) -> fal_client.SyncRequestHandle:
        urls = generation.provider_urls or {}
        if {"status_url", "response_url", "cancel_url"} <= urls.keys():
            return fal_client.SyncRequestHandle(
                request_id=generation.provider_request_id,
                client=_client()._client,
                **{key: urls[key] for key in ("status_url", "response_url", "cancel_url")},
            )
        return _client().get_handle(generation.endpoint_id, generation.provider_request_id)

    def status(self, generation) -> Progress:
        with _errors("status"), _answers_kept() as answers:
            status = self._handle(generation).status(with_logs=False)
        if isinstance(status, fal_client.Queued):
            return Progress("in_queue", queue_position=status.position)
        if isinstance(status, fal_client.InProgress):
            return Progress("in_progress", logs=status.logs or [])
        request_id = generation.provider_request_id
        return Progress(
            "completed",
            metrics=status.metrics or {},
            error=status.error,
            error_type=completed_error_type(status.error, status.error_type),
            gateway_request_id=gateway_id(_answer_for(answers, request_id), request_id),
        )

    def result(self, generation) -> Completed:
        with _errors("result"):
            handle = self._handle(generation)
            response = handle.client.get(handle.response_url, timeout=TIMEOUT)
            retried = generation.gateway_request_id
            if response.status_code == 404 and retried:
                # fal retried the request on its side and its result may be kept under the
                # retried run's id only (fal-ai/fal#703): ask for it there.
                url = _with_request_id(handle.response_url, handle.request_id, retried)
                if url:
                    response = handle.client.get(url, timeout=TIMEOUT)
        if response.status_code == 404:
            raise ProviderError(
                "result_expired",
                "fal no longer holds this result (it keeps results for a limited time).",
                retryable=False,
            )
        if response.status_code != 200:
            raise _http_error(
                response.status_code, _detail(response), response.headers.get("x-fal-error-type")
            )
        body = _json(response)
        if body is None:
            raise ProviderError(
                "malformed_result",
                f"fal's result is not JSON: {response.text[:200]!r}",
                retryable=False,
            )
        return parse_output(body)

    @contextmanager
    def open_video(self, completed: Completed) -> Iterator[Iterator[bytes]]:
        try:
            with _stream(completed.video_url) as stream:
                served = stream.content_type
                if served and not _looks_like_video(served):
                    raise ProviderError(
                        "malformed_result",
                        f"fal's video URL served {served}, not a video.",
                        retryable=False,
                    )
                yield _refusals_as_provider_errors(stream)
        except FetchRefused as exc:
            raise _download_error(exc) from exc

    def cancel(self, generation) -> bool:
        try:
            with _errors("cancel"):
                self._handle(generation).cancel()
        except ProviderError as exc:
            if exc.code == "already_completed":
                return False
            raise
        return True


def _with_request_id(url: str, old: str, new: str) -> str | None:
    """`url` (a …/requests/{old} address) naming request `new` instead; None if it does not
    end with `old`."""
    head, _, tail = url.rpartition(f"/requests/{old}")
    if not head or tail not in ("", "/"):
        return None
    return f"{head}/requests/{new}{tail}"


def privacy_headers() -> dict[str, str]:
    """What fal may keep of a request (shared/fal-protocol.md §2, fal's "platform headers").

    X-Fal-Store-IO: 0 keeps no copy of the inputs and outputs in fal's request history. fal's
    docs say that is the dashboard's copy (the CDN files stay); how long the queue's result
    endpoint still answers under it is not published (UNCONFIRMED; the fake keeps it 1 h, or
    6 min when large). The tracker fetches a result within seconds of seeing it done, a
    webhook carries it, and a result that is gone fails the job with its credits released
    (`result_expired`), so a shorter life costs a job, never money. The lifecycle
    preference deletes the generated video from fal's public CDN after
    FAL_MEDIA_EXPIRATION_SECONDS: by then finalize has copied it to our storage, or given up.
    """
    headers = {}
    if not settings.FAL_STORE_IO:
        headers["X-Fal-Store-IO"] = "0"
    if settings.FAL_MEDIA_EXPIRATION_SECONDS > 0:
        headers["X-Fal-Object-Lifecycle-Preference"] = json.dumps(
            {"expiration_duration_seconds": settings.FAL_MEDIA_EXPIRATION_SECONDS}
        )
    return headers


def _upload_lifecycle() -> fal_client.StorageSettings | None:
    """Our inputs on fal's CDN expire too, but only once fal can no longer need them: a job
    may wait in fal's queue as long as a presigned S3 input would stay valid."""
    if settings.FAL_MEDIA_EXPIRATION_SECONDS <= 0:
        return None
    seconds = max(settings.FAL_MEDIA_EXPIRATION_SECONDS, PRESIGNED_INPUT_TTL)
    return fal_client.StorageSettings(expires_in=seconds)


def parse_output(body) -> Completed:
    """The model output (from the result endpoint or a webhook payload) → the video to fetch."""
    video = body.get("video") if isinstance(body, dict) else None
    url = video.get("url") if isinstance(video, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ProviderError(
            "malformed_result", "fal's result has no video URL; nothing to save.", retryable=False
        )
    return Completed(video_url=url, content_type=video.get("content_type"))


def _looks_like_video(content_type: str) -> bool:
    content_type = content_type.lower()
    return content_type.startswith("video/") or content_type in (
        "application/octet-stream",
        "binary/octet-stream",
    )


def _endpoint(endpoint_id: str):
    from ..catalogue import get_endpoint

    return get_endpoint(endpoint_id)


def completed_error_type(error: str | None, error_type: str | None) -> str | None:
    """Our name for why fal ended a request: a cancelled one is "canceled" (fal says
    "Request cancelled", error_type request_cancelled, in a status and in a webhook)."""
    if error_type == "request_cancelled" or (error and "cancel" in error.lower()):
        return "canceled"
    return error_type


def _stream(url: str):
    """The one place a result video is fetched from the URL fal named: pinned to an address
    we checked is public (safe_fetch), capped at VIDEO_MAX_BYTES, never holding the API key."""
    options = {}
    if settings.FAL_ALLOW_PRIVATE_RESULT_HOSTS:  # tests: the fake serves on loopback
        options = {"ip_check": lambda ip: None, "allowed_ports": {urlsplit(url).port or 443}}
    return open_stream(
        url,
        max_bytes=settings.VIDEO_MAX_BYTES,
        timeout=DOWNLOAD_TIMEOUT,
        what="video",
        # One download per finished job from fal's CDN: the next one reuses the connection.
        keep_alive=True,
        # Honour SSL_CERT_FILE like httpx does (a private CA in front of the CDN, or tests).
        verify=os.environ.get("SSL_CERT_FILE") or True,
        **options,
    )


def _refusals_as_provider_errors(chunks) -> Iterator[bytes]:
    try:
        yield from chunks
    except FetchRefused as exc:
        raise _download_error(exc) from exc


def _download_error(exc: FetchRefused) -> ProviderError:
    """Timeouts and HTTP errors may pass; a file too large or a private address will not."""
    retryable = exc.code in ("url_timeout", "url_http_error")
    code = "download_failed" if retryable else "malformed_result"
    return ProviderError(code, f"Fetching the video failed: {exc}", retryable=retryable)


@contextmanager
def _errors(call: str):
    """Turn fal-client's and httpx's exceptions into ProviderError with a retry verdict."""
    try:
        yield
    except fal_client.client.FalClientHTTPError as exc:
        if call == "submit" and _gateway_gave_up(exc.response):
            raise _unconfirmed(exc) from exc
        body = _json(exc.response)
        if isinstance(body, dict) and body.get("status") == "ALREADY_COMPLETED":
            raise ProviderError(
                "already_completed", "fal had already finished this request.", retryable=False
            ) from exc
        raise _http_error(exc.status_code, exc.message, exc.error_type) from exc
    except httpx.HTTPStatusError as exc:
        # fal-client's upload token call raises httpx's own error (not FalClientHTTPError).
        response = exc.response
        raise _http_error(
            response.status_code, _detail(response), response.headers.get("x-fal-error-type")
        ) from exc
    except (fal_client.client.FalClientTimeoutError, httpx.TimeoutException) as exc:
        if call == "submit" and _may_have_arrived(exc):
            raise _unconfirmed(exc) from exc
        raise ProviderError(
            "timeout", f"fal did not answer the {call} call in time.", retryable=True
        ) from exc
    except httpx.TransportError as exc:
        if call == "submit" and _may_have_arrived(exc):
            raise _unconfirmed(exc) from exc
        raise ProviderError(
            "transport_error", f"Could not reach fal for {call}: {exc}", retryable=True
        ) from exc
    except fal_client.auth.MissingCredentialsError as exc:
        raise ProviderError("provider_auth", "FAL_KEY is not set.", retryable=False) from exc
    except (KeyError, ValueError) as exc:
        raise ProviderError(
            "bad_provider_response",
            f"fal's {call} answer was not understood: {exc}",
            retryable=True,
        ) from exc


# Failures that prove the request never left: nothing was sent, so sending again is safe.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _may_have_arrived(exc: Exception) -> bool:
    """A read timeout, a reset or a protocol error after the POST was (maybe) sent: fal may
    have queued the job and only its answer was lost."""
    return not isinstance(exc, _NOT_SENT)


def _gateway_gave_up(response: httpx.Response | None) -> bool:
    """A 502/504 from fal's ingress (no x-fal-request-id: fal's queue never answered): the
    proxy timed out waiting, so the queue may have accepted the request. A 504 with
    X-Fal-Request-Timeout-Type is fal's own start timeout, a definite answer."""
    return (
        response is not None
        and response.status_code in (502, 504)
        and "x-fal-request-id" not in response.headers
        and "x-fal-request-timeout-type" not in response.headers
    )


def _unconfirmed(exc: Exception) -> ProviderError:
    return ProviderError(
        SUBMIT_UNCONFIRMED,
        f"fal's answer to the submit was lost ({type(exc).__name__}); the job may be queued.",
        retryable=True,
    )


def _http_error(status: int, detail, error_type: str | None) -> ProviderError:
    message = _describe(detail)
    if status == 422:
        policy = isinstance(detail, list) and any(
            isinstance(item, dict) and item.get("type") == "content_policy_violation"
            for item in detail
        )
        code = "content_policy" if policy else "provider_validation"
        return ProviderError(code, message or "fal refused the input.", retryable=False)
    if status == 403 and "locked" in message.lower():
        # fal locks an account whose balance ran out, on every call, for a while even after a
        # top-up: the provider cannot take jobs, nothing is wrong with this one
        # (workflows.circuit pauses submissions; polls simply try again later).
        return ProviderError(
            "provider_locked", f"fal has locked the account: {message}", retryable=True
        )
    if status in (401, 403):
        return ProviderError(
            "provider_auth", f"fal refused our credentials (HTTP {status}).", retryable=False
        )
    if status in INFRASTRUCTURE_STATUS or (error_type or "").startswith("runner_"):
        return ProviderError(
            error_type or "provider_unavailable",
            message or f"fal answered HTTP {status}.",
            retryable=True,
        )
    return ProviderError(
        "provider_error", message or f"fal answered HTTP {status}.", retryable=False
    )


def _describe(detail) -> str:
    """fal's error detail is a string, or (422) a list of {loc, msg, type}: say it plainly."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail or "")[:1000]


def _detail(response: httpx.Response):
    body = _json(response)
    return body.get("detail") if isinstance(body, dict) else response.text[:1000]


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None
