"""The plan-limit counters on the account: moved with each hold and settlement, exact when the
account changes between a create's quote and its hold, and repaired if they ever drift."""

import datetime as dt
import logging
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from billing import holds, limits, plans, services
from billing.errors import InsufficientCredits, PlanLimit
from billing.models import CreditAccount, LedgerEntry
from generation.models import Generation, State
from moderation.policy import BLOCK, Decision
from tests.factories import GenerationFactory
from tests.support.lifecycle import move
from tests.support.media import png_bytes
from workflows import generations as generation_services
from workflows.generations import generation_create

from .conftest import assert_ledger_consistent, give_credits

pytestmark = pytest.mark.django_db

T2V = "fal-ai/pika/v2.2/text-to-video"


@pytest.fixture(autouse=True)
def _no_submission(monkeypatch):
    # The rows stay queued (in flight) until a test moves them.
    monkeypatch.setattr("workflows.generations.enqueue_submit", lambda generation_id: None)


def create(user, *, resolution="720p", duration=5, prompt="a red fox"):
    return generation_create(
        user=user,
        endpoint_id=T2V,
        inputs={"prompt": prompt, "resolution": resolution, "duration": duration},
    )


def counters(user) -> tuple[int, int, int]:
    account = services.account_for(user)
    made, free = limits.usage_today(account)
    return account.in_flight, made, free


def test_each_create_counts_and_each_finish_frees_its_slot(user, settings):
    settings.FREE_DAILY_PREVIEWS = 1
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    give_credits(user, 1000)
    first, second, third = create(user), create(user), create(user)
    assert first.free_preview and not second.free_preview
    assert counters(user) == (3, 3, 1)
    move(first.pk, State.FAILED)  # a free preview: allowance back
    assert counters(user) == (2, 3, 0)
    move(second.pk, State.CANCELED)
    Generation.objects.filter(pk=third.pk).update(state=State.FINALIZING)
    move(third.pk, State.SUCCEEDED, output="outputs/x.mp4")
    assert counters(user) == (0, 3, 0)
    # Replayed moves settle nothing and free nothing twice.
    assert not move(third.pk, State.SUCCEEDED, output="outputs/x.mp4")
    assert holds.credits_settle(generation_id=second.pk, state=State.FAILED) == "already settled"
    assert counters(user) == (0, 3, 0)
    assert_ledger_consistent(services.account_for(user))


def test_a_prompt_blocked_at_create_takes_no_slot(user, monkeypatch):
    decision = Decision(action=BLOCK, category="hate", title="Hate", explanation="x", source="t")
    monkeypatch.setattr("workflows.generations.prompt_check", lambda **kwargs: decision)
    generation = create(user)
    assert generation.state == State.BLOCKED
    assert counters(user) == (0, 1, 1), "counted today (as before), no longer in flight"


def test_the_slot_limit_reads_the_counter_and_a_finish_opens_it(user):
    first = create(user)  # Free: one job at a time
    with pytest.raises(PlanLimit, match="1 job at a time and you have 1 in progress"):
        create(user)
    move(first.pk, State.CANCELED)
    assert create(user).state == State.QUEUED


def test_a_new_utc_day_starts_the_day_counters_at_zero(user, settings):
    settings.BILLING_PLAN_OVERRIDES = (
        '{"free": {"max_in_flight": 10, "max_generations_per_day": 2}}'
    )
    give_credits(user, 1000)
    create(user)
    create(user)
    with pytest.raises(PlanLimit, match="2 generations a day"):
        create(user)
    account = services.account_for(user)
    yesterday = account.usage_day - dt.timedelta(days=1)
    CreditAccount.objects.filter(pk=account.pk).update(usage_day=yesterday)
    assert create(user).free_preview, "today's allowance is whole again"
    assert counters(user) == (3, 1, 1)


def test_an_account_that_moved_since_the_quote_is_quoted_again(user, settings, monkeypatch, caplog):
    """Between the quote and the hold (here: during moderation), another request spends the
    balance: the hold finds the account changed, the create rolls back and quotes again."""
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10, "daily_free_previews": 0}}'
    give_credits(user, 40)  # one render
    real_check = generation_services.prompt_check
    raced = []

    def prompt_check_with_a_racing_create(**kwargs):
        if not raced:
            raced.append(True)
            create(user, prompt="the racing request")
        return real_check(**kwargs)

    monkeypatch.setattr("workflows.generations.prompt_check", prompt_check_with_a_racing_create)
    with (
        caplog.at_level(logging.INFO, logger="workflows.generations"),
        pytest.raises(InsufficientCredits),
    ):
        create(user)
    assert "changed since the quote; quoting again" in caplog.text
    assert [g.prompt for g in Generation.objects.all()] == ["the racing request"]
    account = services.account_for(user)
    assert (account.balance, account.in_flight) == (0, 1)
    assert_ledger_consistent(account)


def test_monthly_credits_granted_since_the_quote_are_spent_first(user, settings, monkeypatch):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10, "daily_free_previews": 0}}'
    give_credits(user, 100)
    real_check = generation_services.prompt_check

    def prompt_check_during_a_grant(**kwargs):
        account = services.account_for(user)
        services.credits_adjust(user=user, amount=30, reason="monthly", bucket="monthly")
        assert account.balance_monthly == 0  # the quote was taken before this grant
        return real_check(**kwargs)

    monkeypatch.setattr("workflows.generations.prompt_check", prompt_check_during_a_grant)
    generation = create(user)
    hold = LedgerEntry.objects.get(generation_id=generation.pk, kind="hold")
    assert (hold.monthly, hold.purchased) == (-30, -10)
    assert_ledger_consistent(services.account_for(user))


def test_the_hold_restates_the_quote(user, settings):
    """credits_hold refuses (HoldStale, nothing written) when what the quote assumed is gone."""
    settings.FREE_DAILY_PREVIEWS = 1
    quote = holds.credits_quote(user=user, resolution="720p", duration=5, list_credits=40)
    assert quote.free_preview
    create(user)  # takes the one free preview and the one slot
    generation = GenerationFactory(user=user)
    with pytest.raises(holds.HoldStale), transaction.atomic():
        holds.credits_hold(quote=quote, generation=generation)
    assert not LedgerEntry.objects.filter(generation_id=generation.pk).exists()
    assert counters(user) == (1, 1, 1)


def test_a_plan_change_since_the_quote_is_noticed(user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"daily_free_previews": 0}}'
    give_credits(user, 100)
    quote = holds.credits_quote(user=user, resolution="720p", duration=5, list_credits=40)
    services.plan_change(account=services.account_for(user), plan=plans.CREATOR, source="staff")
    with pytest.raises(holds.HoldStale), transaction.atomic():
        holds.credits_hold(quote=quote, generation=GenerationFactory(user=user))


def test_repair_recounts_a_drifted_counter_and_leaves_the_rest(user, other_user, caplog):
    create(user)
    create(other_user)
    GenerationFactory(user=user)  # no hold (made outside billing): never counted
    drifted = services.account_for(user)
    CreditAccount.objects.filter(pk=drifted.pk).update(in_flight=5)
    with caplog.at_level(logging.WARNING, logger="billing.holds"):
        assert holds.counters_repair() == 1
    assert services.account_for(user).in_flight == 1
    assert services.account_for(other_user).in_flight == 1
    assert "in_flight was 5, recounted 1" in caplog.text
    assert holds.counters_repair() == 0


def test_repair_is_scheduled():
    from billing.schedules import SCHEDULES

    assert ("repair plan-limit counters", "billing.holds.counters_repair", 10) in SCHEDULES


def test_monthly_credits_of_another_period_are_not_held_on_an_old_quote(user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"daily_free_previews": 0}}'
    services.credits_adjust(user=user, amount=100, reason="test", bucket="monthly")
    quote = holds.credits_quote(user=user, resolution="720p", duration=5, list_credits=40)
    assert (quote.monthly, quote.purchased) == (40, 0)
    account = services.account_for(user)
    CreditAccount.objects.filter(pk=account.pk).update(
        monthly_expires_at=account.monthly_expires_at + dt.timedelta(days=30)
    )
    with pytest.raises(holds.HoldStale), transaction.atomic():
        holds.credits_hold(quote=quote, generation=GenerationFactory(user=user))


class Clock:
    """timezone.now() for a test that moves time between a create's quote and its hold."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_create_quoted_before_midnight_and_held_after_counts_on_the_new_day(
    user, settings, monkeypatch
):
    settings.BILLING_PLAN_OVERRIDES = (
        '{"free": {"max_in_flight": 100, "max_generations_per_day": 2, "daily_free_previews": 0}}'
    )
    give_credits(user, 10_000)
    clock = Clock(dt.datetime(2030, 1, 1, 23, 59, 59, tzinfo=dt.UTC))
    real_check = generation_services.prompt_check

    def moderation_past_midnight(**kwargs):
        if clock.now.day == 1:  # meanwhile, two creates fill the new day's cap
            clock.now = dt.datetime(2030, 1, 2, 0, 0, 1, tzinfo=dt.UTC)
            create(user, prompt="new day 1")
            create(user, prompt="new day 2")
        return real_check(**kwargs)

    monkeypatch.setattr(timezone, "now", clock)
    monkeypatch.setattr(generation_services, "prompt_check", moderation_past_midnight)
    with pytest.raises(PlanLimit, match="2 generations a day"):
        create(user, prompt="quoted on the 1st, held on the 2nd")
    account = services.account_for(user)
    assert (account.usage_day, account.made_today) == (dt.date(2030, 1, 2), 2)
    assert Generation.objects.count() == 2


def test_monthly_credits_that_end_between_quote_and_hold_are_not_spent(user, settings, monkeypatch):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"daily_free_previews": 0}}'
    end = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    clock = Clock(end - dt.timedelta(seconds=2))
    monkeypatch.setattr(timezone, "now", clock)
    services.credits_adjust(user=user, amount=40, reason="test", bucket="monthly")
    CreditAccount.objects.filter(user=user).update(monthly_expires_at=end)
    give_credits(user, 100)
    real_check = generation_services.prompt_check

    def moderation_past_the_period(**kwargs):
        clock.now = end + dt.timedelta(seconds=30)
        return real_check(**kwargs)

    monkeypatch.setattr(generation_services, "prompt_check", moderation_past_the_period)
    generation = create(user)
    hold = LedgerEntry.objects.get(generation_id=generation.pk, kind="hold")
    assert (hold.monthly, hold.purchased) == (0, -40), "the ended monthly credits were written off"
    account = services.account_for(user)
    assert (account.balance_monthly, account.balance_purchased) == (0, 60)
    assert_ledger_consistent(account)


def test_the_last_attempts_quote_under_the_lock_and_a_create_never_half_happens(
    user, settings, monkeypatch
):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10, "daily_free_previews": 0}}'
    give_credits(user, 100)
    real_quote, real_hold = holds.credits_quote, holds.credits_hold
    locks, stale_left = [], [3]

    def quote(**kwargs):
        locks.append(kwargs["lock"])
        return real_quote(**kwargs)

    def hold(**kwargs):
        if stale_left[0]:
            stale_left[0] -= 1
            raise holds.HoldStale("forced")
        return real_hold(**kwargs)

    monkeypatch.setattr(holds, "credits_quote", quote)
    monkeypatch.setattr(holds, "credits_hold", hold)
    generation = create(user)
    assert locks == [False, False, True, True]
    assert LedgerEntry.objects.filter(generation_id=generation.pk, kind="hold").count() == 1
    assert counters(user) == (1, 1, 0)

    stale_left[0] = 4  # every attempt stale: refused whole, nothing left behind
    with pytest.raises(RuntimeError, match="could not hold credits") as refused:
        generation_create(
            user=user,
            endpoint_id="fal-ai/pika/v2.2/image-to-video",
            inputs={"prompt": "the sea breathes"},
            images=[png_bytes(64, 64)],
        )
    assert isinstance(refused.value.__cause__, holds.HoldStale)
    assert Generation.objects.count() == 1
    assert counters(user) == (1, 1, 0)
    inputs = Path(settings.MEDIA_ROOT) / "inputs"
    assert not inputs.exists() or not any(inputs.rglob("*.*")), "stored inputs were removed"


def test_repair_also_finds_an_account_that_counts_too_few(user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 10}}'
    create(user)
    create(user)
    CreditAccount.objects.filter(user=user).update(in_flight=0)
    assert holds.counters_repair() == 1
    assert services.account_for(user).in_flight == 2


def test_a_key_over_its_cap_is_refused_before_its_images_are_stored(user, settings):
    from api.services import apikey_create
    from workflows.generations import KeySpendCap

    settings.BILLING_PLAN_OVERRIDES = '{"free": {"daily_free_previews": 0}}'
    give_credits(user, 1000)
    capped, _ = apikey_create(
        user=user, name="capped", scopes=["generations:write"], monthly_credit_cap=10
    )
    with pytest.raises(KeySpendCap):
        generation_create(
            user=user,
            endpoint_id="fal-ai/pika/v2.2/image-to-video",
            inputs={"prompt": "the sea breathes"},
            images=[png_bytes(64, 64)],
            api_key=capped,
        )
    assert not (Path(settings.MEDIA_ROOT) / "inputs").exists()
    assert counters(user) == (0, 0, 0)
