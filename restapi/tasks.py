"""django-q2 tasks of the REST API: thin."""

from . import idempotency


def prune_idempotency_keys() -> int:
    return idempotency.prune()
