"""Outgoing webhooks to API clients, signed per the Standard Webhooks spec.

One delivery row per (generation, event): a state change seen twice sends once. Deliveries are
retried with back-off for about a day; every attempt is logged on the row, which the client can
read, and can be sent again on request (webhook_redeliver). Targets must be public https
addresses on port 443, checked when the URL is given and again before every attempt.

For a developer's laptop, WEBHOOK_ALLOW_LOOPBACK (honoured only with DEBUG, never in
production) also accepts loopback targets, http or https, on any port: 127.0.0.1, ::1 or
localhost. `data` in a payload is the generation as the API returns it
(api.documents.generation_document) at the event, with its links signed afresh at each attempt.
"""

import base64
import json
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder
from standardwebhooks import Webhook

from core import metrics, safe_fetch
from core.queueing import enqueue
from core.safe_fetch import FetchRefused, check_ip
from generation.models import Generation, State

from .documents import generation_document, output_links, site_absolute
from .models import GenerationWebhook, WebhookDelivery, WebhookEvent, WebhookSecret

log = logging.getLogger(__name__)

EVENT_FOR_STATE = {
    State.SUCCEEDED: WebhookEvent.SUCCEEDED,
    State.FAILED: WebhookEvent.FAILED,
    State.CANCELED: WebhookEvent.CANCELED,
    State.HELD: WebhookEvent.HELD,
    State.BLOCKED: WebhookEvent.BLOCKED,
}
# Seconds to wait before each retry: about 26 hours in all.
RETRY_DELAYS = [30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200]
TIMEOUT_SECONDS = 10.0


class WebhookUrlRefused(ValueError):
    pass


def webhook_secret_for(user) -> str:
    secret, _ = WebhookSecret.objects.get_or_create(
        # The spec's format: whsec_ + standard base64 of 32 random bytes.
        user=user,
        defaults={"secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()},
    )
    return secret.secret


# safe_fetch's messages speak of images; a webhook URL gets its own wording per refusal.
_TARGET_MESSAGES = {
    "url_private_address": "webhook_url must point to a public address.",
    "url_unresolvable": "webhook_url's host does not resolve.",
}


def loopback_allowed() -> bool:
    """DEBUG and WEBHOOK_ALLOW_LOOPBACK both: a production setting alone never opens it."""
    return bool(settings.DEBUG and settings.WEBHOOK_ALLOW_LOOPBACK)


def _loopback_or_public(ip) -> None:
    if not ip.is_loopback:
        check_ip(ip)


ANY_PORT = frozenset(range(1, 65536))


def target_options() -> dict:
    """safe_fetch's options for webhook targets: the defaults (public https on 443), or in
    DEBUG with WEBHOOK_ALLOW_LOOPBACK, loopback too, over http or https, on any port."""
    if not loopback_allowed():
        return {}
    return {"allow_http": True, "allowed_ports": ANY_PORT, "ip_check": _loopback_or_public}


def check_target(url: str) -> None:
    """The same checks a delivery makes (safe_fetch.post), made when the URL is given."""
    try:
        safe_fetch.check_url(url, **target_options())
    except FetchRefused as exc:
        default = "webhook_url must be a public https URL on port 443."
        if not loopback_allowed() and _is_loopback_url(url):
            default += (
                " For a receiver on this machine, run with DEBUG=1 and WEBHOOK_ALLOW_LOOPBACK=1"
                " (development only)."
            )
        raise WebhookUrlRefused(_TARGET_MESSAGES.get(exc.code, default)) from None


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in {"localhost", "127.0.0.1", "::1"}


def generation_webhook_set(
    *, generation: Generation, url: str, events: list[str]
) -> GenerationWebhook:
    """Subscribe an API client to a generation's events; written in the create's transaction
    (workflows.generations), so no event of the new row can pass unannounced."""
    return GenerationWebhook.objects.create(
        generation=generation, url=url, events=sorted(set(events) or set(WebhookEvent.values))
    )


def webhook_outbox_add(*, generation_id, state: str) -> WebhookDelivery | None:
    """In the transaction of a generation's move to `state` (workflows.lifecycle): write one
    delivery row if its client asked for that event. The row commits with the move or not at
    all; a task enqueued on commit sends it, and the minute sweep (deliver_due) sends it if that
    task never runs (a process that died between the commit and the enqueue)."""
    event = EVENT_FOR_STATE.get(state)
    if event is None:
        return None
    # Most moves are of clips no client subscribed to: this one narrow read is all they cost.
    hook = (
        GenerationWebhook.objects.filter(generation_id=generation_id)
        .values("url", "events")
        .first()
    )
    if hook is None or event not in hook["events"]:
        return None
    # One row per (generation, event): the lifecycle moves a row into a state once, so this
    # finds one only when called twice by hand.
    if WebhookDelivery.objects.filter(generation_id=generation_id, event=event).exists():
        return None
    # Read after this transaction's move: its new state.
    generation = Generation.objects.get(pk=generation_id)
    payload = event_payload(event, generation)
    delivery = WebhookDelivery.objects.create(
        generation=generation,
        event=event,
        message_id="msg_" + secrets.token_urlsafe(18),
        url=hook["url"],
        payload=payload,
        next_attempt_at=timezone.now(),
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


def event_payload(event: str, generation: Generation) -> dict:
    """The event as sent: its type, when, and the generation as the API returns it."""
    document = generation_document(
        generation, links=lambda row: output_links(row, absolute=site_absolute)
    )
    return {
        "type": str(event),
        "timestamp": timezone.now().isoformat(),
        # As JSON (dates as the API writes them), for the row's JSONField.
        "data": json.loads(json.dumps(document, cls=JSONEncoder)),
    }


def _fresh_links(delivery: WebhookDelivery) -> dict:
    """The stored payload with the output's links signed again: a retry hours later would
    otherwise send links that expired long ago."""
    payload = delivery.payload
    data = payload.get("data") or {}
    if not data.get("output"):
        return payload
    links = output_links(delivery.generation, absolute=site_absolute)
    return {**payload, "data": {**data, "output": {**data["output"], **links}}}


def _enqueue(delivery_id: int) -> None:
    enqueue("api.tasks.deliver_webhook", delivery_id, task_name=f"webhook {delivery_id}")


def webhook_deliver(*, delivery_id: int, fetch_options: dict | None = None) -> bool:
    """One attempt; True if delivered. Claims the row so that two workers never both send.

    fetch_options go to safe_fetch.post (tests point it at a local receiver).
    """
    now = timezone.now()
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).select_related("generation").first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return False
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at=delivery.next_attempt_at,
    ).update(next_attempt_at=now + timedelta(minutes=5), attempts=delivery.attempts + 1)
    if not claimed:
        return False
    attempt = delivery.attempts + 1
    payload = _fresh_links(delivery)
    body = json.dumps(payload)
    status_code, error = None, ""
    try:
        status_code = safe_fetch.post(
            delivery.url,
            body=body.encode(),
            headers=_signed_headers(delivery.message_id, delivery.generation.user, body, now),
            timeout=TIMEOUT_SECONDS,
            **{**target_options(), **(fetch_options or {})},
        )
        ok = 200 <= status_code < 300
        if not ok:
            error = f"HTTP {status_code}"
    except FetchRefused as exc:
        # Our own wording (a refused address, a timeout); never the network's details.
        ok, error = False, str(exc)[:500]
    if ok:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            payload=payload,  # what was sent, links included
            status=WebhookDelivery.Status.DELIVERED,
            delivered_at=timezone.now(),
            last_status_code=status_code,
            last_error="",
            next_attempt_at=None,
        )
        metrics.WEBHOOK_ATTEMPTS.labels(outcome="delivered").inc()
        return True
    gave_up = attempt > len(RETRY_DELAYS)
    metrics.WEBHOOK_ATTEMPTS.labels(outcome="gave_up" if gave_up else "retry").inc()
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=WebhookDelivery.Status.FAILED if gave_up else WebhookDelivery.Status.PENDING,
        last_status_code=status_code,
        last_error=error,
        next_attempt_at=None
        if gave_up
        else timezone.now() + timedelta(seconds=RETRY_DELAYS[attempt - 1]),
    )
    log.info("webhook %s attempt %s failed: %s", delivery.message_id, attempt, error)
    return False


def _signed_headers(message_id: str, user, body: str, now) -> dict[str, str]:
    signature = Webhook(webhook_secret_for(user)).sign(message_id, now, body)
    return {
        "Content-Type": "application/json",
        "User-Agent": "Promptreel-Webhooks/1.0",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def deliver_due(*, limit: int = 100, fetch_options: dict | None = None) -> int:
    """Run by the scheduler every minute: send what is due, first tries included, so a delivery
    whose on-commit task was lost still goes out. Returns how many were delivered."""
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)[:limit]
    return sum(webhook_deliver(delivery_id=pk, fetch_options=fetch_options) for pk in list(due))


def webhook_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again, delivered or given up or not: due now, with a fresh retry
    schedule. Same message id, so a receiver that keeps ids sees a duplicate, not a new
    event. The attempt log goes on counting."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now(), delivered_at=None
    )
    transaction.on_commit(lambda: _enqueue(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def webhook_send_test(*, user, url: str, fetch_options: dict | None = None) -> dict:
    """POST a signed `webhook.test` event to `url` now and say how it went: for a developer
    checking a receiver and its signature check. Its `data` is the user's latest generation
    (or null). Nothing is stored or retried. Raises WebhookUrlRefused."""
    check_target(url)
    latest = Generation.objects.visible_to(user).order_by("-created_at").first()
    data = None
    if latest is not None:
        data = event_payload("webhook.test", latest)["data"]
    now = timezone.now()
    message_id = "msg_test_" + secrets.token_urlsafe(12)
    body = json.dumps({"type": "webhook.test", "timestamp": now.isoformat(), "data": data})
    try:
        status_code = safe_fetch.post(
            url,
            body=body.encode(),
            headers=_signed_headers(message_id, user, body, now),
            timeout=TIMEOUT_SECONDS,
            **{**target_options(), **(fetch_options or {})},
        )
    except FetchRefused as exc:
        return {
            "message_id": message_id,
            "delivered": False,
            "status_code": None,
            "error": str(exc),
        }
    ok = 200 <= status_code < 300
    return {
        "message_id": message_id,
        "delivered": ok,
        "status_code": status_code,
        "error": "" if ok else f"HTTP {status_code}",
    }
