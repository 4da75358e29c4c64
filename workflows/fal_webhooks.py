"""fal → us: the completion webhook, verified before it can change anything.

fal signs "{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(body)}" with Ed25519; the public
keys are published as a JWKS. A forged, stale or malformed call gets a 4xx and changes nothing.
"""

import base64
import binascii
import hashlib
import json
import logging
import time
from datetime import datetime

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generation.backends import ProviderError
from generation.backends.fal import (
    _describe,
    _http_error,
    completed_error_type,
    gateway_id,
    parse_output,
)
from generation.models import Generation

from . import pipeline
from .lifecycle import FAL_WEBHOOK

log = logging.getLogger(__name__)

TIMESTAMP_TOLERANCE = 300
JWKS_CACHE_KEY = "fal-webhook-jwks"
JWKS_TTL = 24 * 60 * 60
JWKS_REFRESH_GUARD = "fal-webhook-jwks-refreshed"
REQUIRED_HEADERS = (
    "X-Fal-Webhook-Request-Id",
    "X-Fal-Webhook-User-Id",
    "X-Fal-Webhook-Timestamp",
    "X-Fal-Webhook-Signature",
)


class Unverified(Exception):
    pass


# Each web process keeps the parsed keys this long before it reads the shared cache again: a
# cache round trip and a key parse per webhook were a quarter of the web's CPU at 1000 in
# flight (benchmarks/README.md). A rotated key is still picked up at once: a signature no
# memo key verifies takes the refresh path in verify().
JWKS_MEMO_SECONDS = 300
_memo: dict = {"parsed": (), "until": 0.0}


def _fetch_jwks() -> list[str]:
    response = httpx.get(settings.FAL_WEBHOOK_JWKS_URL, timeout=5.0)
    response.raise_for_status()
    # fal-protocol §3 only promises each key's `x` (base64url Ed25519): a key that leaves out
    # `kty`/`crv` is kept, one that names another kind of key is not.
    keys = [
        key["x"]
        for key in response.json().get("keys", [])
        if isinstance(key, dict)
        and isinstance(key.get("x"), str)
        and key.get("kty", "OKP") == "OKP"
        and key.get("crv", "Ed25519") == "Ed25519"
    ]
    cache.set(JWKS_CACHE_KEY, keys, JWKS_TTL)
    return keys


def _public_keys(*, refresh: bool = False) -> tuple[Ed25519PublicKey, ...]:
    if not refresh and _memo["until"] > time.monotonic():
        return _memo["parsed"]
    keys = None if refresh else cache.get(JWKS_CACHE_KEY)
    if keys is None:
        keys = _fetch_jwks()
    _memo.update(parsed=tuple(_parsed(keys)), until=time.monotonic() + JWKS_MEMO_SECONDS)
    return _memo["parsed"]


def jwks_memo_clear() -> None:
    """Forget this process's parsed keys (tests that change fal's keys or the cache)."""
    _memo.update(parsed=(), until=0.0)


def _parsed(keys: list[str]):
    for encoded in keys:
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            yield Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, binascii.Error):
            log.warning("fal's JWKS has a key that is not Ed25519: %r", encoded[:16])


def _verifies(keys: tuple[Ed25519PublicKey, ...], message: bytes, signature: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def verify(headers, body: bytes, *, now: float | None = None) -> str:
    """Check a webhook's headers and signature; return the request id it speaks for."""
    missing = [name for name in REQUIRED_HEADERS if not headers.get(name)]
    if missing:
        raise Unverified(f"missing header(s): {', '.join(missing)}")
    request_id = headers["X-Fal-Webhook-Request-Id"]
    user_id = headers["X-Fal-Webhook-User-Id"]
    timestamp = headers["X-Fal-Webhook-Timestamp"]
    try:
        age = abs((now or time.time()) - int(timestamp))
        signature = bytes.fromhex(headers["X-Fal-Webhook-Signature"])
    except ValueError:
        raise Unverified("malformed timestamp or signature") from None
    if age > TIMESTAMP_TOLERANCE:
        raise Unverified("timestamp outside the allowed window")
    message = f"{request_id}\n{user_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    try:
        if _verifies(_public_keys(), message, signature):
            return request_id
        # fal may have rotated its keys: refetch, but at most once a minute.
        if cache.add(JWKS_REFRESH_GUARD, 1, 60) and _verifies(
            _public_keys(refresh=True), message, signature
        ):
            return request_id
    except httpx.HTTPError as exc:
        log.warning("could not fetch fal's JWKS: %s", exc)
        raise Unverified("signing keys unavailable") from exc
    raise Unverified("signature does not verify")


@csrf_exempt
@require_POST
def fal_webhook(request):
    try:
        request_id = verify(request.headers, request.body)
    except Unverified as exc:
        log.warning("refused a fal webhook: %s", exc)
        return JsonResponse({"detail": f"Webhook refused: {exc}."}, status=401)
    try:
        body = json.loads(request.body)
    except ValueError:
        return JsonResponse({"detail": "Body is not JSON."}, status=400)
    if not isinstance(body, dict) or body.get("request_id", request_id) != request_id:
        return JsonResponse({"detail": "Body does not match the signed request id."}, status=400)
    generation_id, running_since = (
        Generation.objects.filter(provider_request_id=request_id)
        .values_list("pk", "in_progress_at")
        .first()
    ) or (None, None)
    token = request.GET.get("attempt", "")
    if generation_id is None and token:
        # A submit whose answer was lost: the attempt token we put in the URL names the row.
        generation_id = pipeline.generation_submit_confirmed(
            token=token[:32],
            request_id=request_id,
            gateway_request_id=gateway_id(body, request_id),
            actor=FAL_WEBHOOK,
        )
    if generation_id is None:
        # Not ours, long gone, or an attempt already given up and sent again: acknowledge
        # so fal stops retrying.
        if token:
            log.warning("fal webhook for %s names no live submit attempt", request_id)
        return HttpResponse(status=204)
    record_webhook(
        generation_id=generation_id,
        body=body,
        request_id=request_id,
        running_since=running_since,
    )
    return HttpResponse(status=204)


def record_webhook(
    *, generation_id, body: dict, request_id: str, running_since: datetime | None = None
) -> None:
    """What fal says of `request_id` moves the row only while it waits on that request: a
    late or repeated webhook about an earlier attempt leaves a retry alone (pipeline)."""
    retried = gateway_id(body, request_id)
    if retried:
        # fal retried the request on its side: keep the id its result may be filed under.
        Generation.objects.filter(pk=generation_id, provider_request_id=request_id).update(
            gateway_request_id=retried
        )
    if body.get("status") == "OK":
        try:
            completed = parse_output(body.get("payload"))
        except ProviderError as exc:
            detail = body.get("payload_error") or exc.message
            pipeline.generation_fail(
                generation_id=generation_id,
                code="malformed_result",
                message=detail,
                actor=FAL_WEBHOOK,
                request_id=request_id,
            )
            return
        pipeline.generation_complete_at_provider(
            generation_id=generation_id,
            metrics={},
            output_url=completed.video_url,
            actor=FAL_WEBHOOK,
            request_id=request_id,
            running_since=running_since,
        )
        return
    payload = body.get("payload") or {}
    detail = payload.get("detail") if isinstance(payload, dict) else None
    error_type = payload.get("error_type") if isinstance(payload, dict) else None
    if completed_error_type(body.get("error"), error_type) == "canceled":
        # A cancel fal honoured (ours, or one made in fal's dashboard): canceled, not failed.
        pipeline.generation_complete_at_provider(
            generation_id=generation_id,
            metrics={},
            error=str(body.get("error") or "Request cancelled"),
            error_type="canceled",
            actor=FAL_WEBHOOK,
            request_id=request_id,
        )
        return
    status = _status_of(body.get("error"))
    if status:
        error = _http_error(status, detail, body.get("error_type"))
        if error.retryable:
            pipeline.generation_retry_or_fail(
                generation_id=generation_id,
                code=error.code,
                message=error.message,
                actor=FAL_WEBHOOK,
                request_id=request_id,
            )
        else:
            pipeline.generation_fail(
                generation_id=generation_id,
                code=error.code,
                message=error.message,
                actor=FAL_WEBHOOK,
                request_id=request_id,
            )
        return
    message = _describe(detail) or str(body.get("error") or "fal reported an error")
    pipeline.generation_fail(
        generation_id=generation_id,
        code="provider_error",
        message=message,
        actor=FAL_WEBHOOK,
        request_id=request_id,
    )


def _status_of(error) -> int | None:
    """fal's error text reads 'Invalid status code: 422'."""
    if isinstance(error, str) and error.rsplit(":", 1)[-1].strip().isdigit():
        return int(error.rsplit(":", 1)[-1].strip())
    return None
