"""django-q2 tasks of the API app: thin, they take ids."""

from . import idempotency, ratelimit, webhooks


def deliver_webhook(delivery_id: int) -> None:
    webhooks.webhook_deliver(delivery_id=delivery_id)


def deliver_due_webhooks() -> int:
    return webhooks.deliver_due()


def prune() -> tuple[int, int]:
    return idempotency.prune(), ratelimit.prune()
