"""The credits of one render: quote, hold, settlement (docs/architecture.md; gates: billing.limits).

A create quotes first: it reads the account without a lock and decides from that reading what
it will take (a free preview from today's allowance, or the price, monthly credits first), or
refuses (plan limits, balance). Then, in the transaction that inserts the generation, the hold
inserts its ledger entry and moves the balance *and* the account's plan-limit counters (jobs in
flight, generations and free previews today) in one conditional UPDATE whose WHERE clause
restates every assumption of the quote. If anything moved in between, it matches no row and
raises HoldStale; the caller rolls back and quotes again. So the limits are exact under any
concurrency, while the account row is locked only from that UPDATE to the commit, not across
the whole create, and no create counts rows (the counters make every check O(1)).

The counters are a projection, like the balance: `in_flight` counts the account's renders that
hold credits and are not finished (settling the hold frees the slot), `made_today` and
`free_today` count the renders and free previews of `usage_day` (UTC). counters_repair() is the
safety net that recounts `in_flight` from the rows.
"""

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Subquery, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from core import metrics
from generation.models import TERMINAL, Generation, State

from .errors import InsufficientCredits, how_to_get_credits
from .limits import (
    allowance_left,
    check_daily_cap,
    check_in_flight,
    is_preview,
    plan_check,
    today,
    usage_today,
)
from .models import CreditAccount, LedgerEntry
from .services import account_for, account_lock, ledger_apply, monthly_expire

log = logging.getLogger(__name__)

Kind = LedgerEntry.Kind


class HoldStale(Exception):
    """The account changed between the quote and the hold: roll back and quote again."""


# --- Quote and hold -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What a create will hold, decided from one reading of the account (`account`)."""

    account: CreditAccount
    day: dt.date  # the UTC day it counts on
    preview: bool  # the preview shape: free while today's allowance lasts
    free_preview: bool
    monthly: int  # credits taken from each bucket (0 and 0 for a free preview)
    purchased: int

    @property
    def credits(self) -> int:
        return self.monthly + self.purchased


def credits_quote(
    *,
    user,
    resolution: str,
    duration: int,
    list_credits: int,
    hd_rerender: bool = False,
    lock: bool = False,
) -> Quote:
    """Check the plan, the limits and the balance; decide the charge. Raises PlanLimit or
    InsufficientCredits. Writes nothing, except an overdue write-off of ended monthly credits.

    lock=True (inside a transaction) reads under account_lock, so that only the clock can
    change the account before the hold: a create's last attempts after HoldStale.
    """
    account = account_lock(user) if lock else account_for(user)
    now = timezone.now()
    if account.monthly_ended(now) and account.balance_monthly > 0:
        # The expiry job has not run yet: write them off now, so that none are spent.
        with transaction.atomic():
            account = account_lock(user)
            monthly_expire(account, now=now)
    plan_check(
        user=user,
        resolution=resolution,
        duration=duration,
        hd_rerender=hd_rerender,
        account=account,
    )
    plan = account.plan_info
    day = today(now)
    made, free_used = usage_today(account, day=day)
    check_in_flight(plan, account.in_flight)
    check_daily_cap(plan, made)
    preview = is_preview(resolution, duration)
    quote = {"account": account, "day": day, "preview": preview}
    if preview and free_used < plan.daily_free_previews:
        return Quote(**quote, free_preview=True, monthly=0, purchased=0)
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
                + " "
                + how_to_get_credits()
            ),
        )
    monthly = min(account.balance_monthly, list_credits)
    return Quote(**quote, free_preview=False, monthly=monthly, purchased=list_credits - monthly)


def hold_key(generation_id) -> str:
    return f"gen:{generation_id}:hold"


def credits_hold(*, quote: Quote, generation, takes_slot: bool = True) -> LedgerEntry:
    """Hold the quoted credits for a generation inserted in the caller's transaction, and count
    it against the plan's limits. Raises HoldStale (the caller must roll back: the entry is
    written) if the account no longer matches the quote, or a new UTC day has begun since.
    Call it last before the commit: the account row stays locked from its UPDATE to the commit.

    takes_slot False: a generation held for a moderator counts toward today's generations but
    takes no slot in flight while it waits (slot_take gives it one when it is approved).
    """
    account = quote.account
    now = timezone.now()
    if today(now) != quote.day:
        raise HoldStale("a new UTC day began after the quote")
    entry = LedgerEntry(
        account_id=account.pk,
        kind=Kind.HOLD,
        amount=-quote.credits,
        monthly=-quote.monthly,
        purchased=-quote.purchased,
        generation_id=generation.pk,
        idempotency_key=hold_key(generation.pk),
        reason=(
            "Free preview (daily allowance)"
            if quote.free_preview
            else f"{generation.endpoint_id} · {generation.resolution} · {generation.duration} s"
        ),
        period_end=account.monthly_expires_at if quote.monthly else None,
        created_at=now,  # its UTC day is the one the counters count it on (credits_settle)
    )
    entry.save()  # the key names a generation inserted in this transaction: never applied yet
    sql, params = _hold_update(quote, now=now, takes_slot=takes_slot)
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise HoldStale(f"account {account.pk} changed since the quote")
    metrics.ledger_counted(kind=Kind.HOLD, amount=entry.amount)
    return entry


def _hold_update(quote: Quote, *, now: dt.datetime, takes_slot: bool) -> tuple[str, dict]:
    """The hold's UPDATE: the balance and the counters move only if the account is still as
    the quote read it. Plain SQL, the same on PostgreSQL and SQLite: it runs once per create,
    and the ORM's compiling of these expressions cost more than the statement."""
    account, plan = quote.account, quote.account.plan_info
    cap, allowance = plan.max_generations_per_day, plan.daily_free_previews
    ops = transaction.get_connection().ops
    # The counters still hold an earlier day's counts (or none): they restart at 0 today.
    earlier_day = "usage_day IS NULL OR usage_day < %(day)s"
    where = [
        "id = %(id)s AND plan = %(plan)s AND in_flight < %(max_in_flight)s",
        "balance_monthly >= %(monthly)s AND balance_purchased >= %(purchased)s",
        # Never back to an earlier day (a quote from before midnight, on a clock behind ours).
        "(usage_day IS NULL OR usage_day <= %(day)s)",
    ]
    if cap:
        where.append(f"({earlier_day} OR made_today < %(cap)s)")
    if quote.free_preview:
        where.append(f"({earlier_day} OR free_today < %(allowance)s)")
    elif quote.preview and allowance:
        where.append("usage_day = %(day)s AND free_today >= %(allowance)s")  # still used up
    if quote.monthly:  # credits of the same period, which has not ended since the quote
        where.append(
            "monthly_expires_at = %(period)s AND monthly_expires_at > %(now)s"
            if account.monthly_expires_at
            else "monthly_expires_at IS NULL"
        )
    if quote.purchased:
        where.append("balance_monthly = %(monthly)s")  # monthly credits are spent first
    sql = (
        f"UPDATE {CreditAccount._meta.db_table} SET "  # noqa: S608 - no value is interpolated
        "balance_monthly = balance_monthly - %(monthly)s, "
        "balance_purchased = balance_purchased - %(purchased)s, "
        "in_flight = in_flight + %(slot)s, "
        "made_today = CASE WHEN usage_day = %(day)s THEN made_today + 1 ELSE 1 END, "
        "free_today = CASE WHEN usage_day = %(day)s THEN free_today ELSE 0 END + %(taken)s, "
        "usage_day = %(day)s, updated_at = %(now)s "
        "WHERE " + " AND ".join(where)
    )
    params = {
        "id": account.pk,
        "plan": account.plan,
        "max_in_flight": plan.max_in_flight,
        "monthly": quote.monthly,
        "purchased": quote.purchased,
        "cap": cap,
        "allowance": allowance,
        "taken": int(quote.free_preview),
        "slot": int(takes_slot),
        "day": ops.adapt_datefield_value(quote.day),
        "period": ops.adapt_datetimefield_value(account.monthly_expires_at),
        "now": ops.adapt_datetimefield_value(now),
    }
    return sql, params


# A render's slot in flight freed, never below zero: a counter that drifted is put right by
# counters_repair, not by refusing to finish a render.
ONE_SLOT_LESS = Greatest(F("in_flight") - 1, Value(0), output_field=IntegerField())


# --- Settlement ---------------------------------------------------------------------------------


def credits_settle(*, generation_id, state: str, frees_slot: bool = True) -> str:
    """Capture on success, release on failure / cancel / block, and free the render's slot in
    flight (frees_slot False: it never had one, as a generation that ends while held for a
    moderator). Runs in the transaction of the terminal transition; idempotent by key. Returns
    what it did (for logs and tests)."""
    held = hold_key(generation_id)
    capture, release = f"gen:{generation_id}:capture", f"gen:{generation_id}:release"
    # The hold and any settlement of it, in one read.
    entries = {
        entry.idempotency_key: entry
        for entry in LedgerEntry.objects.filter(idempotency_key__in=[held, capture, release])
    }
    hold = entries.get(held)
    if hold is None:
        return "nothing held"  # made before billing existed, or by a test factory
    # A hold is settled one way only. The terminal transition that calls this moves the row
    # once, so the two can never race; a stray direct call finds the other key and stops.
    if len(entries) > 1:
        return "already settled"
    counters = {"in_flight": ONE_SLOT_LESS} if frees_slot else {}
    if state == State.SUCCEEDED:
        done = ledger_apply(
            account_id=hold.account_id,
            kind=Kind.CAPTURE,
            key=capture,
            generation_id=generation_id,
            reason=("Free preview" if hold.amount == 0 else f"{-hold.amount} held credits charged"),
            also=counters,
        )
        return "captured" if done else "already settled"
    if state not in (State.FAILED, State.CANCELED, State.BLOCKED):
        raise ValueError(f"{state} is not a terminal state")
    if (
        state == State.FAILED
        and hold.amount == 0
        and Generation.objects.filter(pk=generation_id, free_preview=True).exists()
    ):
        # A free preview that failed on our or the provider's side gives its allowance back
        # (to the day its hold counted it on); canceled and blocked ones do not (the user chose
        # to, or the prompt broke the rules).
        counters["free_today"] = Case(
            When(usage_day=today(hold.created_at), free_today__gt=0, then=F("free_today") - 1),
            default=F("free_today"),
            output_field=IntegerField(),
        )
    done = ledger_apply(
        account_id=hold.account_id,
        kind=Kind.RELEASE,
        key=release,
        monthly=-hold.monthly,
        purchased=-hold.purchased,
        generation_id=generation_id,
        reason=f"Render {state}",
        period_end=hold.period_end,
        also=counters,
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
    return "released"


def _unfinished_holds():
    """Hold entries of renders that are not finished and not waiting for a moderator: what
    `in_flight` counts."""
    return LedgerEntry.objects.filter(kind=Kind.HOLD, generation__isnull=False).exclude(
        generation__state__in=[*TERMINAL, State.HELD]
    )


def slot_take(*, generation_id) -> bool:
    """A held generation was approved: it takes its slot in flight now (in the approval's
    transaction). Not refused when the plan's slots are full: the moderator's decision stands,
    and the slot frees when it ends. False if it holds no credits (made by a test factory)."""
    return _slot_move(generation_id, F("in_flight") + 1)


def slot_free(*, generation_id) -> bool:
    """A submitted generation went back to a moderator (workflows.output_holds): its slot in
    flight is freed while it waits; its credits stay held."""
    return _slot_move(generation_id, ONE_SLOT_LESS)


def _slot_move(generation_id, in_flight) -> bool:
    """One UPDATE of the account whose hold names this generation."""
    holder = LedgerEntry.objects.filter(idempotency_key=hold_key(generation_id)).values(
        "account_id"
    )[:1]
    return bool(
        CreditAccount.objects.filter(pk=Subquery(holder)).update(
            in_flight=in_flight, updated_at=timezone.now()
        )
    )


def in_flight_truth(account: CreditAccount) -> int:
    """What `in_flight` should be: the account's unfinished renders that hold credits."""
    return _unfinished_holds().filter(account_id=account.pk).count()


def counters_repair() -> int:
    """The scheduled safety net: put right (and log) every account whose `in_flight` differs
    from its unfinished renders that hold credits. Returns how many were repaired.

    One grouped count finds the suspects; each is recounted under its account lock, so the
    repair is safe beside creates and settlements: it sees every hold and settlement that
    committed before, and those still to come move the counter from the repaired value.
    """
    counted = dict(
        _unfinished_holds()
        .values("account_id")
        .annotate(running=Count("pk"))
        .values_list("account_id", "running")
    )
    claimed = dict(CreditAccount.objects.filter(in_flight__gt=0).values_list("pk", "in_flight"))
    suspects = [pk for pk in counted.keys() | claimed.keys() if counted.get(pk) != claimed.get(pk)]
    repaired = 0
    for pk in sorted(suspects):
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update(no_key=True).get(pk=pk)
            truth = in_flight_truth(account)
            if truth != account.in_flight:
                log.warning(
                    "account %s: in_flight was %s, recounted %s", pk, account.in_flight, truth
                )
                CreditAccount.objects.filter(pk=pk).update(in_flight=truth)
                repaired += 1
    return repaired


# --- Reading ------------------------------------------------------------------------------------


def estimate(
    *, user, resolution: str, duration: int, list_credits: int, hd_rerender: bool = False
) -> dict:
    """What a create would hold, without creating (for the API's estimate and the pages).

    Raises PlanLimit like a create would for the plan's shape; `enough` says whether the
    balance covers it now.
    """
    account = account_for(user)
    plan_check(
        user=user,
        resolution=resolution,
        duration=duration,
        hd_rerender=hd_rerender,
        account=account,
    )
    plan = account.plan_info
    free = is_preview(resolution, duration) and allowance_left(account) > 0
    spendable = account.balance_purchased + (
        0 if account.monthly_ended() else account.balance_monthly
    )
    return {
        "credits": 0 if free else list_credits,
        "list_credits": list_credits,
        "free_preview": free,
        "balance": spendable,
        "enough": free or spendable >= list_credits,
        "in_flight": account.in_flight,
        "max_in_flight": plan.max_in_flight,
        "plan": plan.code,
    }


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
