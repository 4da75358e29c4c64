"""Idempotency-Key on create (draft-ietf-httpapi-idempotency-key-header).

Same key + same body → the first response again; same key + another body → 422; same key while
the first request is still running → 409. Keys belong to the user and are kept 24 hours.
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


def idempotency_finish(*, user, key: str, status: int, body) -> None:
    if status >= 500:
        # Let the client retry a failure on our side with the same key.
        IdempotencyRecord.objects.filter(user=user, key=key).delete()
        return
    # Stored exactly as it went out (dates as strings), so a replay is the same document.
    stored = json.loads(JSONRenderer().render(body))
    IdempotencyRecord.objects.filter(user=user, key=key).update(
        response_status=status, response_body=stored
    )


def prune() -> int:
    return IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()[0]
