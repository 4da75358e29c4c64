"""Every credit movement and plan change (the life of one render's hold is billing.holds).

Rules (docs/architecture.md "Money"):
- Integers only. A balance moves only in ledger_apply(): insert the entry (unique idempotency
  key; an IntegrityError on the key means "already applied" and the call does nothing), then a
  conditional UPDATE ... WHERE balance >= debit, both inside one savepoint. Read-modify-save is
  never used, so concurrent writers on SQLite and PostgreSQL cannot create or destroy a credit.
  The one other place is a render's hold (holds.credits_hold): the same two steps in the
  create's transaction, its UPDATE also moving the plan-limit counters.
- Holds take monthly credits first, then purchased ones; the split is recorded on the hold and a
  release returns each part to its bucket (a monthly part whose period has ended meanwhile is
  returned and written off at once).
- A capture moves no balance (the hold already did); it records that the hold was charged.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import metrics
from core.audit import audit_record
from core.models import AuditAction

from . import plans
from .errors import LedgerError
from .models import CreditAccount, LedgerEntry, PlanChange

log = logging.getLogger(__name__)

Kind = LedgerEntry.Kind


# --- Accounts ---------------------------------------------------------------------------------


def account_for(user) -> CreditAccount:
    """The user's account, made on first use (every new user starts on Free)."""
    try:
        return CreditAccount.objects.get(user=user)
    except CreditAccount.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return CreditAccount.objects.create(user=user)
    except IntegrityError:  # made by a concurrent request
        return CreditAccount.objects.get(user=user)


def account_lock(user) -> CreditAccount:
    """The user's account row, locked until the surrounding transaction ends.

    PostgreSQL: SELECT ... FOR UPDATE serialises this user's read-then-write transactions.
    SQLite: a no-op; settings open every transaction with BEGIN IMMEDIATE, which already takes
    the database's single write lock, so writers are serialised there.
    """
    assert transaction.get_connection().in_atomic_block, "account_lock needs a transaction"
    # FOR NO KEY UPDATE: it does not wait for the key-share locks that inserting a ledger entry
    # takes on its account (a create's hold holds one until it commits).
    locked = CreditAccount.objects.select_for_update(no_key=True)
    try:
        return locked.get(user=user)
    except CreditAccount.DoesNotExist:
        pass
    account = account_for(user)  # first use: make it (outside no lock is needed for that)
    return locked.get(pk=account.pk)


# --- The one way a balance moves --------------------------------------------------------------


def ledger_apply(
    *,
    account_id: int,
    kind: str,
    key: str,
    monthly: int = 0,
    purchased: int = 0,
    generation_id=None,
    reason: str = "",
    actor=None,
    period_end: dt.datetime | None = None,
    also: Mapping[str, Any] | None = None,
) -> LedgerEntry | None:
    """Apply one movement exactly once. Returns the new entry, or None if `key` was applied.

    Raises LedgerError if a bucket would go below zero (nothing is written then).
    also: more columns of the account to set in the same UPDATE (holds.credits_settle frees the
    render's slot in flight with its capture or release).
    """
    monthly, purchased = int(monthly), int(purchased)
    entry = LedgerEntry(
        account_id=account_id,
        kind=kind,
        amount=monthly + purchased,
        monthly=monthly,
        purchased=purchased,
        generation_id=generation_id,
        idempotency_key=key,
        reason=reason,
        actor=actor,
        period_end=period_end,
    )
    try:
        with transaction.atomic():
            entry.save()
            _balance_move(account_id, key, monthly, purchased, also)
    except IntegrityError:
        if LedgerEntry.objects.filter(idempotency_key=key).exists():
            return None
        raise
    metrics.ledger_counted(kind=kind, amount=entry.amount)
    return entry


def _balance_move(
    account_id: int, key: str, monthly: int, purchased: int, also: Mapping[str, Any] | None
) -> None:
    """The conditional UPDATE of ledger_apply: no bucket goes below zero."""
    if not (monthly or purchased or also):
        return
    guard = {}
    if monthly < 0:
        guard["balance_monthly__gte"] = -monthly
    if purchased < 0:
        guard["balance_purchased__gte"] = -purchased
    moved = CreditAccount.objects.filter(pk=account_id, **guard).update(
        balance_monthly=F("balance_monthly") + monthly,
        balance_purchased=F("balance_purchased") + purchased,
        updated_at=timezone.now(),
        **(also or {}),
    )
    if moved != 1:
        raise LedgerError(
            f"{key}: account {account_id} cannot cover {monthly:+d} monthly / "
            f"{purchased:+d} purchased"
        )


def _aware(value: dt.datetime | None) -> str:
    return value.isoformat() if value else "none"


def _expire_key(account_id: int, period_end: dt.datetime | None) -> str:
    return f"expire:{account_id}:{_aware(period_end)}"


def monthly_expire(account: CreditAccount, *, now: dt.datetime | None = None) -> int:
    """Write off monthly credits whose period has ended; returns how many. Call under lock."""
    now = now or timezone.now()
    if not account.monthly_ended(now):
        return 0
    account.refresh_from_db(fields=["balance_monthly", "monthly_expires_at"])
    period_end = account.monthly_expires_at
    if period_end is None or period_end > now:
        return 0
    amount = account.balance_monthly
    entry = None
    if amount > 0:
        entry = ledger_apply(
            account_id=account.pk,
            kind=Kind.EXPIRE,
            key=_expire_key(account.pk, period_end),
            monthly=-amount,
            reason=f"Monthly credits of the period ending {period_end:%Y-%m-%d %H:%M} UTC",
            period_end=period_end,
        )
    CreditAccount.objects.filter(pk=account.pk, monthly_expires_at=period_end).update(
        monthly_expires_at=None, updated_at=now
    )
    account.refresh_from_db(fields=["balance_monthly", "balance_purchased", "monthly_expires_at"])
    return amount if entry else 0


def monthly_expire_due(*, now: dt.datetime | None = None) -> int:
    """The scheduled job: expire every account whose monthly period ended; renew comp plans.

    A paid plan without a Stripe subscription (given by staff) gets its next month of credits
    here, since no invoice will come for it.
    """
    now = now or timezone.now()
    count = 0
    due = CreditAccount.objects.filter(monthly_expires_at__lte=now).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update().get(pk=pk)
            ended = account.monthly_expires_at
            if ended is None or ended > now:
                continue
            count += monthly_expire(account, now=now) > 0
            plan = account.plan_info
            if plan.paid and not account.stripe_subscription_id:
                next_end = ended + dt.timedelta(days=30)
                while next_end <= now:
                    next_end += dt.timedelta(days=30)
                monthly_grant(
                    account=account,
                    credits=plan.monthly_credits,
                    period_end=next_end,
                    key=f"comp:{account.pk}:{next_end.isoformat()}",
                    reason=f"{plan.name} plan (given by staff): monthly credits",
                )
    return count


def monthly_grant(
    *,
    account: CreditAccount,
    credits: int,
    period_end: dt.datetime,
    key: str,
    reason: str,
    actor=None,
    now: dt.datetime | None = None,
) -> bool:
    """Add a period's monthly credits once (keyed), expiring what is left of an older period."""
    now = now or timezone.now()
    with transaction.atomic():
        return _monthly_grant(account, credits, period_end, key, reason, actor, now)


def _monthly_grant(account, credits, period_end, key, reason, actor, now) -> bool:
    if LedgerEntry.objects.filter(idempotency_key=key).exists():
        return False
    account = CreditAccount.objects.select_for_update().get(pk=account.pk)
    current = account.monthly_expires_at
    if current is not None and current < period_end and account.balance_monthly > 0:
        # A new period starts: what is left of the old one goes.
        ledger_apply(
            account_id=account.pk,
            kind=Kind.EXPIRE,
            key=_expire_key(account.pk, current),
            monthly=-account.balance_monthly,
            reason=f"Monthly credits of the period ending {current:%Y-%m-%d %H:%M} UTC",
            period_end=current,
        )
    entry = ledger_apply(
        account_id=account.pk,
        kind=Kind.GRANT_MONTHLY,
        key=key,
        monthly=credits,
        reason=reason,
        actor=actor,
        period_end=period_end,
    )
    if entry is None:
        return False
    if period_end <= now:
        # Paid for a period that is already over (a late, out-of-order event): granted and
        # written off together, so the statement shows both.
        ledger_apply(
            account_id=account.pk,
            kind=Kind.EXPIRE,
            key=f"{key}:expired",
            monthly=-credits,
            reason="Monthly credits of a period that had already ended",
            period_end=period_end,
        )
    elif current is None or period_end > current:
        CreditAccount.objects.filter(pk=account.pk).update(
            monthly_expires_at=period_end, updated_at=now
        )
    return True


# --- Purchases and staff adjustments -----------------------------------------------------------


def credits_purchase(*, account: CreditAccount, credits: int, key: str, reason: str) -> bool:
    """Purchased (never-expiring) credits, once per key (e.g. `stripe:cs_…`)."""
    if credits <= 0:
        raise ValueError("A purchase adds credits")
    return (
        ledger_apply(
            account_id=account.pk, kind=Kind.PURCHASE, key=key, purchased=credits, reason=reason
        )
        is not None
    )


def credits_adjust(
    *,
    user,
    amount: int,
    reason: str,
    actor=None,
    bucket: str = "purchased",
    key: str | None = None,
) -> LedgerEntry | None:
    """Staff grant (amount > 0) or take away (< 0) credits, with who and why on the entry.

    Monthly grants expire with the account's current period (a month from now if it has none).
    """
    if not reason.strip():
        raise ValueError("Say why: the reason is kept on the ledger entry")
    if amount == 0:
        raise ValueError("The amount must not be zero")
    if bucket not in ("purchased", "monthly"):
        raise ValueError("bucket must be 'purchased' or 'monthly'")
    key = key or f"adjust:{uuid.uuid4().hex}"
    who = f" by {actor}" if actor else ""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.CREDIT_ADJUST,
            target=user,
            reason=reason,
            after={"amount": amount, "bucket": bucket},
        )
        account = account_lock(user)
        monthly_expire(account)
        if bucket == "monthly" and amount > 0:
            period_end = account.monthly_expires_at or timezone.now() + dt.timedelta(days=30)
            entry = ledger_apply(
                account_id=account.pk,
                kind=Kind.ADJUST,
                key=key,
                monthly=amount,
                reason=f"{reason}{who}",
                actor=actor,
                period_end=period_end,
            )
            if entry and account.monthly_expires_at is None:
                CreditAccount.objects.filter(pk=account.pk).update(monthly_expires_at=period_end)
            return entry
        parts = {bucket: amount}
        try:
            return ledger_apply(
                account_id=account.pk,
                kind=Kind.ADJUST,
                key=key,
                monthly=parts.get("monthly", 0),
                purchased=parts.get("purchased", 0),
                reason=f"{reason}{who}",
                actor=actor,
            )
        except LedgerError:
            balance = account.balance_monthly if bucket == "monthly" else account.balance_purchased
            raise LedgerError(
                f"Cannot take {-amount} {bucket} credits: the {bucket} balance is {balance}."
            ) from None


def plan_change(
    *,
    account: CreditAccount,
    plan: str,
    source: str,
    actor=None,
    reason: str = "",
    grant_credits: bool = False,
) -> bool:
    """Put the account on `plan` and record who and why. Staff changes may grant the new
    plan's monthly credits at once (a comp plan renews monthly through the expiry job)."""
    if plan not in plans.plans():
        raise ValueError(f"Unknown plan {plan!r}; plans are {', '.join(plans.plans())}")
    with transaction.atomic():
        account = CreditAccount.objects.select_for_update().get(pk=account.pk)
        old = account.plan
        if old == plan and not grant_credits:
            return False
        if old != plan:
            CreditAccount.objects.filter(pk=account.pk).update(plan=plan, updated_at=timezone.now())
            PlanChange(
                account=account,
                from_plan=old,
                to_plan=plan,
                source=source,
                actor=actor,
                reason=reason,
            ).save()
            if source != "stripe":  # staff (or a command): the audit log names who and why
                audit_record(
                    actor=actor,
                    action=AuditAction.PLAN_CHANGE,
                    target=account,
                    reason=reason,
                    before={"plan": old},
                    after={"plan": plan},
                )
        info = plans.get_plan(plan)
        if grant_credits and info.monthly_credits:
            period_end = timezone.now() + dt.timedelta(days=30)
            monthly_grant(
                account=account,
                credits=info.monthly_credits,
                period_end=period_end,
                key=f"staff-plan:{uuid.uuid4().hex}",
                reason=f"{info.name} plan monthly credits, given by {actor or 'staff'}: {reason}",
                actor=actor,
            )
    return True


# --- Reading -----------------------------------------------------------------------------------


def ledger_totals(account: CreditAccount) -> tuple[int, int]:
    totals = LedgerEntry.objects.filter(account=account).aggregate(
        monthly=Coalesce(Sum("monthly"), 0), purchased=Coalesce(Sum("purchased"), 0)
    )
    return totals["monthly"], totals["purchased"]
