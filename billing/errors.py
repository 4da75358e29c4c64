"""Refusals for money and plan reasons.

They subclass core.errors.InputError so that every caller that already turns an
InputError into a form error (the website) or a CommandError (manage.py generate) shows them;
`code`, `http_status` and `allowed_by` let the website answer 402/400 and the API map them to
problem+json codes `insufficient_credits` / `plan_limit`.
"""

from django.conf import settings

from core.errors import InputError


def how_to_get_credits() -> str:
    """The way to more credits that exists on this site: buying them, or asking staff."""
    if settings.BILLING_ENABLED:
        return "Buy a credit pack or subscribe to Creator or Studio."
    return "Nothing is sold on this site: ask its staff to grant you credits."


class BillingRefusal(InputError):
    code = "billing"
    http_status = 400

    def __init__(self, message: str, *, field: str = "credits", allowed_by: str | None = None):
        self.message = message
        self.allowed_by = allowed_by
        super().__init__({field: message})


class InsufficientCredits(BillingRefusal):
    code = "insufficient_credits"
    http_status = 402

    def __init__(self, *, needed: int, available: int, message: str | None = None):
        self.needed = needed
        self.available = available
        super().__init__(
            message
            or (
                f"This render costs {needed} credits and your balance is {available}. "
                + how_to_get_credits()
            )
        )


class PlanLimit(BillingRefusal):
    code = "plan_limit"
    http_status = 400


class UsageLimit(PlanLimit):
    """A plan limit that time lifts (jobs in flight, generations per day): retrying later may
    succeed, so it is a 429 with Retry-After (RFC 9110 §15.5.20), not a 400, and an
    Idempotency-Key does not keep it (restapi/idempotency.py).

    `limit` names the plan field (`max_in_flight`, `max_generations_per_day`), `allowed` its
    value, `retry_after` the seconds after which a retry may succeed."""

    http_status = 429

    def __init__(
        self, message: str, *, limit: str, allowed: int, retry_after: int, allowed_by=None
    ):
        self.limit = limit
        self.allowed = allowed
        self.retry_after = retry_after
        super().__init__(message, allowed_by=allowed_by)


class LedgerError(Exception):
    """A ledger movement that would break an invariant (e.g. take a balance below zero)."""
