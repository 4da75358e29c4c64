"""Idempotency-Key on create (draft-ietf-httpapi-idempotency-key-header).

Same key + same body → the first response again, with its status, body and Location, marked
`Idempotent-Replayed: true`; same key + another body → 422; same key while the first request is
still running → 409. Keys belong to the user and are kept 24 hours (KEEP_FOR), then forgotten.

Only answers that are final for the request are kept (the draft's "the resource server
SHOULD … send the same response"): a created generation, or a refusal of the request itself
(invalid input, unsupported media type, refused by the content policy). A refusal that depends
on the account's state at that moment — a limit that time lifts (429), not enough credits or the
key's monthly cap (402), a plan or suspension refusal, our own 5xx — is not kept: the key is
released, and a retry with it runs again and may succeed.
"""

import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from api.models import IdempotencyRecord

from .problems import Problem

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def request_fingerprint(request) -> str:
    """What makes two requests 'the same': method, path, and the body's data and files."""
    body = request.data
    if hasattr(body, "getlist"):  # form data: keep repeated fields
        body = {key: body.getlist(key) for key in body if key not in request.FILES}
    files = {}
    for name, upload in request.FILES.items():
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        files[name] = digest.hexdigest()
    payload = json.dumps([request.method, request.path, body, files], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def idempotency_begin(*, user, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim `key`; return the finished record to replay, or None to go ahead. Raises Problem."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem(
            status_code=400,
            code="invalid_input",
            detail=f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            errors={"Idempotency-Key": "Use a unique value such as a UUID."},
        )
    IdempotencyRecord.objects.filter(
        user=user, key=key, created_at__lt=timezone.now() - KEEP_FOR
    ).delete()
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(user=user, key=key, request_hash=fingerprint)
        return None
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(user=user, key=key)
    if record.request_hash != fingerprint:
        raise Problem(
            status_code=422,
            code="idempotency_mismatch",
            detail="This Idempotency-Key was already used for a different request.",
        )
    if not record.finished:
        raise Problem(
            status_code=409,
            code="idempotency_conflict",
            detail="The first request with this Idempotency-Key is still running; retry shortly.",
        )
    return record


# Refusals of the request itself, which no retry of the same body can change.
FINAL_REFUSALS = frozenset(
    {"invalid_input", "unsupported_media_type", "moderation_blocked", "moderation_taken_down"}
)
# Response headers a replay repeats.
REPLAYED_HEADERS = ("Location",)


def is_final(status: int, body) -> bool:
    if 200 <= status < 300:
        return True
    return 400 <= status < 500 and isinstance(body, dict) and body.get("code") in FINAL_REFUSALS


def idempotency_finish(*, user, key: str, status: int, body, headers=None) -> None:
    """Keep the answer for replays if it is final (see the module's docstring); otherwise
    release the key so that a retry with it runs again."""
    if not is_final(status, body):
        IdempotencyRecord.objects.filter(user=user, key=key).delete()
        return
    # Stored exactly as it went out (dates as strings), so a replay is the same document.
    stored = json.loads(JSONRenderer().render(body))
    kept = {name: headers[name] for name in REPLAYED_HEADERS if headers and name in headers}
    IdempotencyRecord.objects.filter(user=user, key=key).update(
        response_status=status, response_body=stored, response_headers=kept
    )


def prune() -> int:
    return IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()[0]
