"""django-q2 tasks of the API app: thin, they take ids."""

from . import ratelimit, webhooks


def deliver_webhook(delivery_id: int) -> None:
    webhooks.webhook_deliver(delivery_id=delivery_id)


def deliver_due_webhooks() -> int:
    return webhooks.deliver_due()


def prune() -> int:
    return ratelimit.prune()
