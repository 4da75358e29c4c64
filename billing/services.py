"""Every credit movement, plan gate and plan change.

Rules (design §5):
- Integers only. A balance moves only in ledger_apply(): insert the entry (unique idempotency
  key; an IntegrityError on the key means "already applied" and the call does nothing), then a
  conditional UPDATE ... WHERE balance >= debit, both inside one savepoint. Read-modify-save is
  never used, so concurrent writers on SQLite and PostgreSQL cannot create or destroy a credit.
- Holds take monthly credits first, then purchased ones; the split is recorded on the hold and a
  release returns each part to its bucket (a monthly part whose period has ended meanwhile is
  returned and written off at once).
- A capture moves no balance (the hold already did); it records that the hold was charged.
"""

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from moderation.models import AuditAction
from moderation.services import audit_record

from . import plans
from .errors import InsufficientCredits, LedgerError, PlanLimit
from .models import CreditAccount, DailyUsage, LedgerEntry, PlanChange

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

    PostgreSQL: SELECT ... FOR UPDATE serialises this user's money-guarding transactions (the
    jobs-in-flight count and the allowance check need it; balances are safe without it).
    SQLite: a no-op; settings open every transaction with BEGIN IMMEDIATE, which already takes
    the database's single write lock, so writers are serialised there.
    """
    assert transaction.get_connection().in_atomic_block, "account_lock needs a transaction"
    try:
        return CreditAccount.objects.select_for_update().get(user=user)
    except CreditAccount.DoesNotExist:
        pass
    account = account_for(user)  # first use: make it (outside no lock is needed for that)
    return CreditAccount.objects.select_for_update().get(pk=account.pk)


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
    savepoint: bool = True,
) -> LedgerEntry | None:
    """Apply one movement exactly once. Returns the new entry, or None if `key` was applied.

    Raises LedgerError if a bucket would go below zero (nothing is written then).

    savepoint=False is for a movement whose key cannot have been applied yet (a hold keyed by a
    generation inserted in the caller's transaction): no savepoint round trips; the guarded
    UPDATE runs first, so a LedgerError still writes nothing, and a failed insert (a duplicate
    key) dooms the caller's whole transaction instead of reporting "already applied".
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
    if not savepoint:
        assert transaction.get_connection().in_atomic_block, "savepoint=False needs a transaction"
        _balance_move(account_id, key, monthly, purchased)
        with transaction.atomic(
            savepoint=False
        ):  # an error here marks the transaction rollback-only
            entry.save()
        return entry
    try:
        with transaction.atomic():
            entry.save()
            _balance_move(account_id, key, monthly, purchased)
    except IntegrityError:
        if LedgerEntry.objects.filter(idempotency_key=key).exists():
            return None
        raise
    return entry


def _balance_move(account_id: int, key: str, monthly: int, purchased: int) -> None:
    """The conditional UPDATE of ledger_apply: no bucket goes below zero."""
    if not (monthly or purchased):
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
    if account.monthly_expires_at is None or account.monthly_expires_at > now:
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


# --- Quotes, gates, holds and settlement --------------------------------------------------------


@dataclass(frozen=True)
class Charge:
    """What a create will hold: `credits` (0 for a free preview)."""

    account: CreditAccount
    credits: int
    free_preview: bool
    list_credits: int


def is_preview(resolution: str, duration: int) -> bool:
    preview = plans.get_plan(plans.FREE)  # the preview shape is the same on every plan
    return duration <= plans.PREVIEW_MAX_SECONDS and preview.allows_resolution(resolution)


def plan_check(
    *,
    user,
    resolution: str,
    duration: int,
    hd_rerender: bool = False,
    account: CreditAccount | None = None,
) -> None:
    """Refuse what the user's plan does not allow, saying which plan does.

    "Render in HD" of one's own preview is allowed on every plan (paid HD): only the
    resolution gate is lifted, and the duration is the preview's. `account`: the user's
    account when the caller has it already (read for them otherwise).
    """
    plan = (account or account_for(user)).plan_info
    if not hd_rerender and not plan.allows_resolution(resolution):
        better = plans.cheapest_plan_allowing(resolution=resolution)
        raise PlanLimit(
            f"{resolution} is not on the {plan.name} plan (up to {plan.max_resolution})."
            + (f" {better.name} allows it." if better else "")
            + (" Or render a preview and use Render in HD." if plan.code == plans.FREE else ""),
            field="resolution",
            allowed_by=better.code if better else None,
        )
    if duration > plan.max_duration:
        better = plans.cheapest_plan_allowing(duration=duration)
        raise PlanLimit(
            f"{duration} s videos are not on the {plan.name} plan (up to {plan.max_duration} s)."
            + (f" {better.name} allows them." if better else ""),
            field="duration",
            allowed_by=better.code if better else None,
        )


def today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def allowance_left(account: CreditAccount, *, day: dt.date | None = None) -> int:
    day = day or today()
    used = DailyUsage.objects.filter(account=account, day=day).values_list("free_used", flat=True)
    return max(account.plan_info.daily_free_previews - (used.first() or 0), 0)


def _allowance_take(account: CreditAccount, limit: int, *, day: dt.date) -> bool:
    """Count one free preview today if fewer than `limit` were used.

    One statement, on PostgreSQL and SQLite alike: insert today's row with one preview used, or
    raise the existing row's count if it is under `limit` (a conditional upsert, as atomic as
    the conditional UPDATE it replaces). A row comes back only if a preview was taken.
    """
    if limit <= 0:
        return False
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    table = quote(DailyUsage._meta.db_table)
    account_col, day_col, used_col = (
        quote(DailyUsage._meta.get_field(name).column) for name in ("account", "day", "free_used")
    )
    # Only quoted identifiers from the models' _meta are interpolated; values are parameters.
    sql = (
        f"INSERT INTO {table} ({account_col}, {day_col}, {used_col}) VALUES (%s, %s, 1) "  # noqa: S608
        f"ON CONFLICT ({account_col}, {day_col}) DO UPDATE SET {used_col} = {table}.{used_col} + 1 "
        f"WHERE {table}.{used_col} < %s RETURNING {used_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [account.pk, connection.ops.adapt_datefield_value(day), limit])
        return cursor.fetchone() is not None


def in_flight(account: CreditAccount) -> int:
    from generation.models import TERMINAL, Generation

    return Generation.objects.filter(user_id=account.user_id).exclude(state__in=TERMINAL).count()


def _under_lock_counts(
    account: CreditAccount, *, day: dt.date, excluding=None
) -> tuple[int, int, int]:
    """Jobs in flight, generations made today (UTC) and free previews used today, in one
    statement: what credits_reserve checks after account_lock (run after the lock is granted,
    so it sees every create that committed before). Plain SQL on PostgreSQL and SQLite alike:
    this runs while the account is locked, and the ORM's compiling took longer than the query.
    """
    from generation.models import TERMINAL, Generation

    connection = transaction.get_connection()
    quote = connection.ops.quote_name

    def column(model, name):
        return quote(model._meta.get_field(name).column)

    generations, usage = quote(Generation._meta.db_table), quote(DailyUsage._meta.db_table)
    state, created, user, pk = (
        column(Generation, n) for n in ("state", "created_at", "user", "id")
    )
    terminal = ", ".join(["%s"] * len(TERMINAL))
    running = f"{state} NOT IN ({terminal})"
    since = f"{created} >= %s"
    # Only quoted identifiers from the models' _meta are interpolated; values are parameters.
    sql = (
        f"SELECT COUNT(*) FILTER (WHERE {running}), COUNT(*) FILTER (WHERE {since}), "  # noqa: S608
        f"(SELECT {column(DailyUsage, 'free_used')} FROM {usage} "
        f"WHERE {column(DailyUsage, 'account')} = %s AND {column(DailyUsage, 'day')} = %s) "
        f"FROM {generations} WHERE {user} = %s AND ({running} OR {since})"
        + (f" AND {pk} <> %s" if excluding is not None else "")  # noqa: S608
    )
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    states = sorted(TERMINAL)
    start_param = connection.ops.adapt_datetimefield_value(start)
    params = [
        *states,
        start_param,
        account.pk,
        connection.ops.adapt_datefield_value(day),
        account.user_id,
        *states,
        start_param,
    ]
    if excluding is not None:
        params.append(Generation._meta.pk.get_db_prep_value(excluding, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        made_running, made_today, free_used = cursor.fetchone()
    return made_running or 0, made_today or 0, free_used or 0


def _check_daily_cap(plan, made_today: int) -> None:
    # Counted under the account lock taken by credits_reserve, so racing creates are exact.
    cap = plan.max_generations_per_day
    if cap and made_today >= cap:
        better = next(
            (
                p
                for p in sorted(plans.plans().values(), key=lambda p: p.usd_cents_per_month)
                if p.max_generations_per_day > cap or p.max_generations_per_day == 0
            ),
            None,
        )
        raise PlanLimit(
            f"The {plan.name} plan allows {cap} generations a day (UTC) and you have reached it."
            + (f" {better.name} allows {better.max_generations_per_day}." if better else ""),
            allowed_by=better.code if better else None,
        )


def credits_reserve(
    *,
    user,
    resolution: str,
    duration: int,
    list_credits: int,
    check_plan: bool = False,
    hd_rerender: bool = False,
    inserted_id=None,
) -> Charge:
    """Inside the create transaction: lock the account, check jobs in flight, take a free
    preview from today's allowance or check the balance. The hold itself follows the insert.

    check_plan: run plan_check (with `hd_rerender`) first, on the locked row, for a caller that
    did not check the plan before the transaction (it saves reading the account twice).
    inserted_id: the generation this create already inserted in this transaction, before the
    lock (so that the lock is held for less); the counts leave it out. Rows that other creates
    have inserted but not yet committed are not counted either: each create counts, under the
    lock, every create that committed before it took the lock, so the limits stay exact.
    """
    account = account_lock(user)
    if check_plan:
        plan_check(
            user=user,
            resolution=resolution,
            duration=duration,
            hd_rerender=hd_rerender,
            account=account,
        )
    plan = account.plan_info
    day = today()
    running, made_today, free_used = _under_lock_counts(account, day=day, excluding=inserted_id)
    if running >= plan.max_in_flight:
        better = next(
            (
                p
                for p in sorted(plans.plans().values(), key=lambda p: p.usd_cents_per_month)
                if p.max_in_flight > plan.max_in_flight
            ),
            None,
        )
        raise PlanLimit(
            f"The {plan.name} plan runs {plan.max_in_flight} "
            f"job{'s' if plan.max_in_flight != 1 else ''} at a time and you have {running} "
            "in progress; wait for one to finish."
            + (f" {better.name} runs {better.max_in_flight} at once." if better else ""),
            allowed_by=better.code if better else None,
        )
    _check_daily_cap(plan, made_today)
    monthly_expire(account)
    preview = is_preview(resolution, duration)
    # Only lock holders raise today's count, so a used-up allowance stays used up (a refund
    # of a failed preview may lower it meanwhile; the next create sees that).
    if (
        preview
        and free_used < plan.daily_free_previews
        and _allowance_take(account, plan.daily_free_previews, day=day)
    ):
        return Charge(account=account, credits=0, free_preview=True, list_credits=list_credits)
    if account.balance < list_credits:
        raise InsufficientCredits(
            needed=list_credits,
            available=account.balance,
            message=(
                f"This render costs {list_credits} credits and your balance is "
                f"{account.balance}."
                + (
                    f" Your {plan.daily_free_previews} free previews for today are used."
                    if preview and plan.daily_free_previews
                    else ""
                )
                + " Buy a credit pack or subscribe to Creator or Studio."
            ),
        )
    return Charge(
        account=account, credits=list_credits, free_preview=False, list_credits=list_credits
    )


def estimate(
    *, user, resolution: str, duration: int, list_credits: int, hd_rerender: bool = False
) -> dict:
    """What a create would hold, without creating (for the API's estimate and the pages).

    Raises PlanLimit like a create would; `enough` says whether the balance covers it now.
    """
    plan_check(user=user, resolution=resolution, duration=duration, hd_rerender=hd_rerender)
    account = account_for(user)
    plan = account.plan_info
    free = is_preview(resolution, duration) and allowance_left(account) > 0
    ended = account.monthly_expires_at is not None and account.monthly_expires_at <= timezone.now()
    spendable = account.balance_purchased + (0 if ended else account.balance_monthly)
    running = in_flight(account)
    return {
        "credits": 0 if free else list_credits,
        "list_credits": list_credits,
        "free_preview": free,
        "balance": spendable,
        "enough": free or spendable >= list_credits,
        "in_flight": running,
        "max_in_flight": plan.max_in_flight,
        "plan": plan.code,
    }


def hold_key(generation_id) -> str:
    return f"gen:{generation_id}:hold"


def credits_hold(*, charge: Charge, generation) -> LedgerEntry | None:
    """Debit the charge for this generation (monthly credits first). Same transaction as the
    generation's insert; raises InsufficientCredits (rolling both back) if the balance moved.

    charge.account is the row credits_reserve read under account_lock in this transaction
    (monthly_expire refreshes it when it writes off), so its balances are current: nobody else
    can move them until this transaction ends. The conditional UPDATE guards them anyway.
    """
    account = charge.account
    cost = charge.credits
    from_monthly = min(account.balance_monthly, cost)
    from_purchased = cost - from_monthly
    if from_purchased > account.balance_purchased:
        raise InsufficientCredits(needed=cost, available=account.balance)
    if charge.free_preview:
        reason = "Free preview (daily allowance)"
    else:
        reason = f"{generation.endpoint_id} · {generation.resolution} · {generation.duration} s"
    try:
        return ledger_apply(
            account_id=account.pk,
            kind=Kind.HOLD,
            key=hold_key(generation.pk),
            monthly=-from_monthly,
            purchased=-from_purchased,
            generation_id=generation.pk,
            reason=reason,
            period_end=account.monthly_expires_at if from_monthly else None,
            savepoint=False,  # the key names a generation inserted in this transaction
        )
    except LedgerError:
        account.refresh_from_db(fields=["balance_monthly", "balance_purchased"])
        raise InsufficientCredits(needed=cost, available=account.balance) from None


def credits_settle(*, generation_id, state: str) -> str:
    """Capture on success, release on failure / cancel / block. Runs in the transaction of the
    terminal transition; idempotent by key. Returns what it did (for logs and tests)."""
    from generation.models import State

    hold = LedgerEntry.objects.filter(idempotency_key=hold_key(generation_id)).first()
    if hold is None:
        return "nothing held"  # made before billing existed, or by a test factory
    # A hold is settled one way only. The terminal transition that calls this moves the row
    # once, so the two can never race; a stray direct call finds the other key and stops.
    settled = LedgerEntry.objects.filter(
        idempotency_key__in=[f"gen:{generation_id}:capture", f"gen:{generation_id}:release"]
    )
    if settled.exists():
        return "already settled"
    if state == State.SUCCEEDED:
        done = ledger_apply(
            account_id=hold.account_id,
            kind=Kind.CAPTURE,
            key=f"gen:{generation_id}:capture",
            generation_id=generation_id,
            reason=("Free preview" if hold.amount == 0 else f"{-hold.amount} held credits charged"),
        )
        return "captured" if done else "already settled"
    if state not in (State.FAILED, State.CANCELED, State.BLOCKED):
        raise ValueError(f"{state} is not a terminal state")
    done = ledger_apply(
        account_id=hold.account_id,
        kind=Kind.RELEASE,
        key=f"gen:{generation_id}:release",
        monthly=-hold.monthly,
        purchased=-hold.purchased,
        generation_id=generation_id,
        reason=f"Render {state}",
        period_end=hold.period_end,
    )
    if done is None:
        return "already settled"
    if hold.monthly and hold.period_end and hold.period_end <= timezone.now():
        ledger_apply(
            account_id=hold.account_id,
            kind=Kind.EXPIRE,
            key=f"gen:{generation_id}:release-expire",
            monthly=hold.monthly,
            generation_id=generation_id,
            reason="Refunded monthly credits of a period that has ended",
            period_end=hold.period_end,
        )
    if state == State.FAILED and hold.amount == 0:
        # A free preview that failed on our or the provider's side gives its allowance back;
        # canceled and blocked ones do not (the user chose to, or the prompt broke the rules).
        from generation.models import Generation

        row = Generation.objects.filter(pk=generation_id, free_preview=True)
        created = row.values_list("created_at", flat=True).first()
        if created is not None:
            DailyUsage.objects.filter(
                account_id=hold.account_id, day=today(created), free_used__gt=0
            ).update(free_used=F("free_used") - 1)
    return "released"


# --- Reading -----------------------------------------------------------------------------------


def ledger_totals(account: CreditAccount) -> tuple[int, int]:
    totals = LedgerEntry.objects.filter(account=account).aggregate(
        monthly=Coalesce(Sum("monthly"), 0), purchased=Coalesce(Sum("purchased"), 0)
    )
    return totals["monthly"], totals["purchased"]


def generation_charge(generation) -> dict:
    """Price before and after for the generation page: held, charged or refunded."""
    entries = {
        e.kind: e for e in LedgerEntry.objects.filter(generation_id=generation.pk).order_by("id")
    }
    hold = entries.get(Kind.HOLD)
    if hold is None:
        return {"status": "none", "credits": generation.credit_cost}
    credits = -hold.amount
    if Kind.CAPTURE in entries:
        status = "charged"
    elif Kind.RELEASE in entries:
        status = "refunded"
    else:
        status = "held"
    return {"status": status, "credits": credits, "free_preview": generation.free_preview}
