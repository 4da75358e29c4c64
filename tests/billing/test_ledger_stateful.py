"""A Hypothesis state machine over the ledger: buy, grant, hold, capture, release, replay,
expire, with a moving clock. After every step: balance == sum of entries, no bucket below zero,
every idempotency key applied once, and each settled hold nets out as it should."""

import datetime as dt
import os
import uuid
from unittest import mock

import pytest
from django.db import transaction
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from billing import holds as billing_holds
from billing import services
from billing.errors import InsufficientCredits
from billing.models import LedgerEntry
from generation.models import Generation, State
from tests.factories import GenerationFactory, UserFactory
from tests.support.lifecycle import move

from .conftest import assert_ledger_consistent

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class LedgerMachine(RuleBasedStateMachine):
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        self.clock = START
        self.user = UserFactory(email=f"{uuid.uuid4().hex}@example.com")
        self.account = services.account_for(self.user)
        self.done: list = []  # operations applied, to replay
        self.settled: dict = {}  # generation id -> "captured" | "released"

    def snapshot(self):
        self.account.refresh_from_db()
        return (
            self.account.balance_monthly,
            self.account.balance_purchased,
            LedgerEntry.objects.filter(account=self.account).count(),
        )

    @rule(key=st.integers(0, 4), credits=st.integers(1, 500))
    def buy(self, key, credits):
        op = ("buy", key, credits)
        before = self.snapshot()
        applied = services.credits_purchase(
            account=self.account, credits=credits, key=f"buy:{self.account.pk}:{key}", reason="t"
        )
        after = self.snapshot()
        if applied:
            assert after[1] == before[1] + credits
            self.done.append(op)
        else:
            assert after == before

    @rule(key=st.integers(0, 3), credits=st.integers(1, 400))
    def grant_monthly(self, key, credits):
        services.monthly_grant(
            account=self.account,
            credits=credits,
            period_end=self.clock + dt.timedelta(days=30),
            key=f"month:{self.account.pk}:{key}",
            reason="t",
            now=self.clock,
        )
        self.done.append(("grant", key, credits))

    @rule(target=holds, cost=st.integers(0, 300))
    def hold(self, cost):
        generation = GenerationFactory(user=self.user, credit_cost=cost)
        before = self.snapshot()
        try:
            quote = billing_holds.credits_quote(
                user=self.user, resolution="720p", duration=5, list_credits=cost
            )
            with transaction.atomic():
                billing_holds.credits_hold(quote=quote, generation=generation)
        except InsufficientCredits:
            monthly, purchased, _ = self.snapshot()
            ended = (
                self.account.monthly_expires_at and self.account.monthly_expires_at <= self.clock
            )
            assert (0 if ended else monthly) + purchased < cost
            return generation.pk  # nothing held: settling it must do nothing
        after = self.snapshot()
        assert sum(after[:2]) <= sum(before[:2]) - cost or after[2] > before[2]
        self.done.append(("hold", generation.pk, cost))
        return generation.pk

    def finish(self, generation_id, state) -> None:
        """The terminal transition, which settles the hold in its transaction."""
        if state == State.SUCCEEDED:
            Generation.objects.filter(pk=generation_id).update(state=State.FINALIZING)
            move(generation_id, state, output="outputs/x.mp4")
        else:
            move(generation_id, state)
        kind = "capture" if state == State.SUCCEEDED else "release"
        if LedgerEntry.objects.filter(generation_id=generation_id, kind=kind).exists():
            self.settled[generation_id] = "captured" if kind == "capture" else "released"

    @rule(generation_id=consumes(holds))
    def capture(self, generation_id):
        self.finish(generation_id, State.SUCCEEDED)

    @rule(generation_id=consumes(holds), state=st.sampled_from([State.FAILED, State.CANCELED]))
    def release(self, generation_id, state):
        self.finish(generation_id, state)

    @rule(days=st.integers(1, 45))
    def advance_clock(self, days):
        self.clock += dt.timedelta(days=days)

    @rule()
    def expire(self):
        services.monthly_expire_due(now=self.clock)

    @rule(data=st.data())
    def replay(self, data):
        """Any earlier keyed movement, again: nothing changes."""
        if not self.done and not self.settled:
            return
        before = self.snapshot()
        choices = [("settle", gid, how) for gid, how in self.settled.items()] + self.done
        op = data.draw(st.sampled_from(choices))
        if op[0] == "buy":
            key = f"buy:{self.account.pk}:{op[1]}"
            assert not services.credits_purchase(
                account=self.account, credits=op[2], key=key, reason="t"
            )
        elif op[0] == "grant":
            assert not services.monthly_grant(
                account=self.account,
                credits=op[2],
                period_end=self.clock + dt.timedelta(days=30),
                key=f"month:{self.account.pk}:{op[1]}",
                reason="t",
                now=self.clock,
            )
        elif op[0] == "hold":
            entry = services.ledger_apply(
                account_id=self.account.pk,
                kind=LedgerEntry.Kind.HOLD,
                key=billing_holds.hold_key(op[1]),
                purchased=-op[2],
            )
            assert entry is None
        else:
            for state in (State.SUCCEEDED, State.FAILED, State.BLOCKED):
                assert billing_holds.credits_settle(generation_id=op[1], state=state) == (
                    "already settled"
                )
        assert self.snapshot() == before

    @invariant()
    def balance_is_the_sum_of_entries(self):
        assert_ledger_consistent(self.account)

    @invariant()
    def in_flight_counts_the_unsettled_holds(self):
        self.account.refresh_from_db()
        assert self.account.in_flight == billing_holds.in_flight_truth(self.account)
        unsettled = LedgerEntry.objects.filter(account=self.account, kind="hold").count() - len(
            self.settled
        )
        assert self.account.in_flight == unsettled

    @invariant()
    def settled_holds_net_out(self):
        for generation_id, how in self.settled.items():
            entries = LedgerEntry.objects.filter(generation_id=generation_id)
            hold = entries.get(kind="hold")
            net = entries.exclude(kind="expire").aggregate(total=Sum("amount"))["total"]
            if how == "captured":
                assert net == hold.amount
                assert entries.filter(kind="capture").count() == 1
            else:
                assert net == 0
                assert entries.filter(kind="release").count() == 1


machine_clock = [START]


class ClockedMachine(LedgerMachine):
    """The machine's clock is what timezone.now() says during a run."""

    def __init__(self):
        machine_clock[0] = START
        super().__init__()

    @rule(days=st.integers(1, 45))
    def advance_clock(self, days):
        self.clock += dt.timedelta(days=days)
        machine_clock[0] = self.clock


@pytest.mark.django_db
@override_settings(
    # Limits out of the way (holds here are never finished by a worker); no free previews, so
    # that a hold of 0 credits is an ordinary hold.
    BILLING_PLAN_OVERRIDES='{"free": {"max_in_flight": 1000, "daily_free_previews": 0, '
    '"max_generations_per_day": 0}}'
)
def test_ledger_state_machine():
    with mock.patch.object(timezone, "now", side_effect=lambda: machine_clock[0]):
        run_state_machine_as_test(
            ClockedMachine,
            settings=settings(
                max_examples=int(os.environ.get("LEDGER_EXAMPLES", "20")),
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
