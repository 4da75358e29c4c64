"""Hold on create, capture on success, release on failure / cancel / block; plan gates."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from billing import holds, limits, plans, services
from billing.errors import InsufficientCredits, PlanLimit
from billing.models import CreditAccount, LedgerEntry
from generation.models import Generation, GenerationInput, State, Tier
from tests.factories import GenerationFactory
from tests.support.lifecycle import move
from tests.support.media import png_bytes
from workflows.generations import generation_create, generation_render_hd

from .conftest import assert_ledger_consistent, give_credits

pytestmark = pytest.mark.django_db

T2V = "fal-ai/pika/v2.2/text-to-video"
I2V = "fal-ai/pika/v2.2/image-to-video"


def create(user, resolution="720p", duration=5, **kwargs):
    return generation_create(
        user=user,
        endpoint_id=kwargs.pop("endpoint_id", T2V),
        inputs={"prompt": "a red fox", "resolution": resolution, "duration": duration},
        **kwargs,
    )


def succeed(generation):
    for state in (State.SUBMITTING, State.IN_QUEUE, State.FINALIZING):
        assert move(generation.pk, state)
    assert move(generation.pk, State.SUCCEEDED, output="outputs/x.mp4")


def allowance_left(user) -> int:
    return limits.allowance_left(services.account_for(user))


def kinds(account):
    return list(
        LedgerEntry.objects.filter(account=account).order_by("id").values_list("kind", flat=True)
    )


@pytest.fixture
def creator(user):
    account = services.account_for(user)
    services.plan_change(account=account, plan=plans.CREATOR, source="staff")
    # As if paid through Stripe: no staff "comp" renewal by the expiry job.
    CreditAccount.objects.filter(pk=account.pk).update(stripe_subscription_id="sub_test")
    return user


def test_free_previews_cost_nothing_then_run_out(user, settings):
    settings.FREE_DAILY_PREVIEWS = 2
    for _ in range(2):
        generation = create(user)
        assert generation.free_preview and generation.credit_cost == 0
        move(generation.pk, State.CANCELED)
    with pytest.raises(InsufficientCredits) as refusal:
        create(user)
    assert "costs 40 credits" in refusal.value.message
    assert "2 free previews for today are used" in refusal.value.message
    assert refusal.value.code == "insufficient_credits" and refusal.value.http_status == 402
    assert Generation.objects.count() == 2
    account = services.account_for(user)
    assert allowance_left(user) == 0
    # With credits the same request is a paid render at the catalogue price.
    give_credits(user, 40)
    paid = create(user)
    assert not paid.free_preview and paid.credit_cost == 40
    account.refresh_from_db()
    assert account.balance == 0
    assert_ledger_consistent(account)


def test_hold_then_capture_once(creator):
    account = give_credits(creator, 100)
    generation = create(creator, duration=10)  # not a preview: 80 credits
    assert generation.credit_cost == 80 and not generation.free_preview
    account.refresh_from_db()
    assert account.balance == 20
    succeed(generation)
    account.refresh_from_db()
    assert account.balance == 20
    assert kinds(account) == ["purchase", "hold", "capture"]
    # Replays: the transition finds the row gone, settlement finds its key used.
    assert not move(generation.pk, State.SUCCEEDED, output="o.mp4")
    assert holds.credits_settle(generation_id=generation.pk, state=State.SUCCEEDED) == (
        "already settled"
    )
    assert holds.credits_settle(generation_id=generation.pk, state=State.FAILED) == (
        "already settled"
    )
    assert kinds(account) == ["purchase", "hold", "capture"]
    assert holds.generation_charge(generation) == {
        "status": "charged",
        "credits": 80,
        "free_preview": False,
    }
    assert_ledger_consistent(account)


@pytest.mark.parametrize("end", [State.FAILED, State.CANCELED])
def test_release_returns_each_part_to_its_bucket(creator, end):
    account = give_credits(creator, 100)
    services.monthly_grant(
        account=account,
        credits=30,
        period_end=timezone.now() + dt.timedelta(days=3),
        key="test-month",
        reason="test",
    )
    generation = create(creator, duration=10)
    hold = LedgerEntry.objects.get(idempotency_key=f"gen:{generation.pk}:hold")
    assert (hold.monthly, hold.purchased) == (-30, -50), "monthly credits are spent first"
    account.refresh_from_db()
    assert (account.balance_monthly, account.balance_purchased) == (0, 50)
    assert move(generation.pk, end)
    account.refresh_from_db()
    assert (account.balance_monthly, account.balance_purchased) == (30, 100)
    assert holds.generation_charge(generation)["status"] == "refunded"
    assert_ledger_consistent(account)


def test_blocked_by_moderation_releases(creator):
    account = give_credits(creator, 100)
    generation = create(creator, duration=10)
    Generation.objects.filter(pk=generation.pk).update(state=State.HELD)
    assert move(generation.pk, State.BLOCKED)
    account.refresh_from_db()
    assert account.balance == 100
    assert kinds(account)[-1] == "release"


def test_refund_of_monthly_credits_after_their_period_ended_expires_them(creator):
    account = give_credits(creator, 10)
    services.monthly_grant(
        account=account,
        credits=70,
        period_end=timezone.now() + dt.timedelta(hours=1),
        key="test-month",
        reason="test",
    )
    generation = create(creator, duration=10)  # 70 monthly + 10 purchased
    # The period ends while the render runs; the job expires what is left (nothing).
    later = timezone.now() + dt.timedelta(hours=2)
    services.monthly_expire_due(now=later)
    hold = LedgerEntry.objects.get(idempotency_key=f"gen:{generation.pk}:hold")
    # Pretend the refund happens after the period end.
    assert hold.period_end < later
    from unittest import mock

    with mock.patch("billing.services.timezone.now", return_value=later):
        assert move(generation.pk, State.FAILED)
    account.refresh_from_db()
    assert (account.balance_monthly, account.balance_purchased) == (0, 10)
    assert kinds(account)[-2:] == ["release", "expire"]
    assert_ledger_consistent(account)


def test_failed_free_preview_gives_the_allowance_back_canceled_does_not(user, settings):
    settings.FREE_DAILY_PREVIEWS = 1
    account = services.account_for(user)
    first = create(user)
    assert allowance_left(user) == 0
    move(first.pk, State.FAILED)
    assert allowance_left(user) == 1
    move(first.pk, State.FAILED)  # replay: nothing more
    assert allowance_left(user) == 1
    second = create(user)
    move(second.pk, State.CANCELED)
    assert allowance_left(user) == 0
    assert account.balance == 0
    assert kinds(account) == ["hold", "release", "hold", "release"]


def test_rows_without_a_hold_settle_nothing(user):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    assert move(generation.pk, State.FAILED)
    assert not LedgerEntry.objects.exists()


# --- Plan gates -------------------------------------------------------------------------------


def test_free_plan_refuses_1080p_and_10s_naming_the_plan_that_allows_it(user):
    give_credits(user, 1000)
    with pytest.raises(PlanLimit) as refusal:
        create(user, resolution="1080p")
    assert refusal.value.allowed_by == "creator" and refusal.value.code == "plan_limit"
    assert "1080p is not on the Free plan" in refusal.value.message
    assert "Creator allows it" in refusal.value.message
    with pytest.raises(PlanLimit) as refusal:
        create(user, duration=10)
    assert "10 s videos are not on the Free plan" in refusal.value.message
    assert refusal.value.errors == {"duration": refusal.value.message}
    assert not Generation.objects.exists()
    assert services.account_for(user).balance == 1000


def test_website_answers_400_for_plan_limits_and_402_for_credits(alice_client, user, settings):
    settings.FREE_DAILY_PREVIEWS = 0
    form = {
        "endpoint": T2V,
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "duration": "5",
        "preset": "static",
    }
    response = alice_client.post(reverse("generate"), form)
    assert response.status_code == 400
    assert b"1080p is not on the Free plan" in response.content
    response = alice_client.post(reverse("generate"), {**form, "resolution": "720p"})
    assert response.status_code == 402
    assert b"costs 40 credits and your balance is 0" in response.content
    assert not Generation.objects.exists()


def test_jobs_in_flight_are_limited_per_plan(user, settings):
    settings.FREE_DAILY_PREVIEWS = 5
    first = create(user)
    with pytest.raises(PlanLimit) as refusal:
        create(user)
    assert "runs 1 job at a time" in refusal.value.message
    assert refusal.value.allowed_by == "creator"
    move(first.pk, State.CANCELED)
    create(user)  # one finished, room again


def test_plans_are_data_and_settings_override_them(settings, user):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 3}}'
    settings.STRIPE_PRICE_CREATOR = "price_creator"
    assert plans.get_plan("free").max_in_flight == 3
    assert plans.plan_for_stripe_price("price_creator").code == "creator"
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"nonsense": 1}}'
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        plans.plans()


# --- Render in HD -------------------------------------------------------------------------------


def test_render_in_hd_repeats_the_preview_at_1080p_for_credits(alice_client, user):
    preview = generation_create(
        user=user,
        endpoint_id=I2V,
        inputs={"prompt": "it glows", "resolution": "720p", "duration": 5},
        images=[png_bytes(64, 64, (10, 20, 200))],
        preset="pan_left",
        seed=1234,
    )
    assert preview.free_preview
    succeed(preview)
    page = alice_client.get(preview.get_absolute_url())
    assert b"Render in HD (1080p) \xc2\xb7 90 credits" in page.content
    assert b"Free preview" in page.content

    response = alice_client.post(reverse("billing_render_hd", args=[preview.pk]))
    assert response.status_code == 302 and response["Location"] == preview.get_absolute_url()
    assert Generation.objects.count() == 1, "no credits: refused, nothing made"

    give_credits(user, 100)
    response = alice_client.post(reverse("billing_render_hd", args=[preview.pk]))
    hd = Generation.objects.get(rerender_of=preview)
    assert response["Location"] == hd.get_absolute_url()
    assert (hd.resolution, hd.tier, hd.credit_cost) == ("1080p", Tier.HD, 90)
    assert (hd.seed, hd.prompt, hd.preset) == (1234, "it glows", "pan_left")
    assert hd.arguments["resolution"] == "1080p"
    assert {k: v for k, v in hd.arguments.items() if k != "resolution"} == {
        k: v for k, v in preview.arguments.items() if k != "resolution"
    }
    assert GenerationInput.objects.filter(generation=hd).count() == 1
    assert services.account_for(user).balance == 10
    page = alice_client.get(hd.get_absolute_url())
    assert b"90 credits held" in page.content


def test_render_in_hd_is_bought_once_then_links_to_the_hd_clip(alice_client, user):
    give_credits(user, 200)
    preview = create(user)
    succeed(preview)
    preview.refresh_from_db()
    first = alice_client.post(reverse("billing_render_hd", args=[preview.pk]))
    hd = Generation.objects.get(rerender_of=preview)
    assert first["Location"] == hd.get_absolute_url()
    account = services.account_for(user)
    assert account.balance == 110
    # The page now links to the HD clip instead of offering a second purchase.
    page = alice_client.get(preview.get_absolute_url()).content.decode()
    assert "Render in HD" not in page and hd.get_absolute_url() in page
    # A second click (an old tab, a double submit) goes to the same clip and charges nothing.
    second = alice_client.post(reverse("billing_render_hd", args=[preview.pk]))
    assert second["Location"] == hd.get_absolute_url()
    assert generation_render_hd(user=user, source=preview) == hd
    assert Generation.objects.filter(rerender_of=preview).count() == 1
    account.refresh_from_db()
    assert account.balance == 110
    assert_ledger_consistent(account)
    # A failed HD render is no HD version: it can be bought again (the failure refunded it).
    assert move(hd.pk, State.FAILED)
    holds.credits_settle(generation_id=hd.pk, state=State.FAILED)
    again = generation_render_hd(user=user, source=preview)
    assert again != hd and again.tier == Tier.HD


def test_render_in_hd_only_for_own_finished_previews(user, other_user):
    give_credits(other_user, 500)
    preview = create(user)
    with pytest.raises(Exception, match="Only a finished 720p preview"):
        generation_render_hd(user=user, source=preview)
    succeed(preview)
    with pytest.raises(Exception, match="Not your generation"):
        generation_render_hd(user=other_user, source=preview)


# --- Pages --------------------------------------------------------------------------------------


def test_statement_lists_every_movement_with_generation_links(alice_client, user):
    give_credits(user, 50)
    generation = create(user)  # free preview
    move(generation.pk, State.FAILED)
    page = alice_client.get(reverse("billing_statement"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "Billing is off on this site" in body
    assert 'id="balance-purchased" class="num">50<' in body
    assert 'id="allowance-left" class="num">3<' in body
    assert generation.get_absolute_url() in body
    # One line for the render (its hold and release together), with its state.
    render_lines = [line for line in body.split("<li ") if generation.get_absolute_url() in line]
    assert len(render_lines) == 1
    assert "Failed" in render_lines[0] and "Free preview" in render_lines[0]
    assert "Charged" not in body
    # Offline, plans and packs are shown with their prices, and how credits are granted here.
    assert "$12.00/month" in body and "500 credits for $5.00" in body
    assert "grant_credits" in body and "Subscribe" not in body
    assert "50 credits" in alice_client.get(reverse("generate")).content.decode()


def test_expiry_job_writes_off_monthly_credits_once(creator):
    account = services.account_for(creator)
    end = timezone.now() + dt.timedelta(days=1)
    services.monthly_grant(account=account, credits=500, period_end=end, key="m1", reason="t")
    later = end + dt.timedelta(minutes=1)
    assert services.monthly_expire_due(now=later) == 1
    assert services.monthly_expire_due(now=later) == 0
    account.refresh_from_db()
    assert account.balance_monthly == 0 and account.monthly_expires_at is None
    assert kinds(account) == ["grant_monthly", "expire"]
    assert_ledger_consistent(account)


def test_comp_plan_given_by_staff_renews_through_the_expiry_job(user, admin_user):
    account = services.account_for(user)
    services.plan_change(
        account=account,
        plan="studio",
        source="staff",
        actor=admin_user,
        reason="partner",
        grant_credits=True,
    )
    account.refresh_from_db()
    assert account.plan == "studio" and account.balance_monthly == 6000
    later = account.monthly_expires_at + dt.timedelta(minutes=1)
    services.monthly_expire_due(now=later)
    account.refresh_from_db()
    assert account.balance_monthly == 6000 and account.monthly_expires_at > later
    assert kinds(account) == ["grant_monthly", "expire", "grant_monthly"]
    assert account.plan_changes.get().actor == admin_user
    assert CreditAccount.objects.count() == 1
    assert (account.in_flight, account.made_today, account.free_today) == (0, 0, 0)


def test_estimate_is_what_a_create_holds(user, settings):
    settings.FREE_DAILY_PREVIEWS = 1
    give_credits(user, 100)
    first = holds.estimate(user=user, resolution="720p", duration=5, list_credits=40)
    assert (first["credits"], first["free_preview"], first["enough"]) == (0, True, True)
    generation = create(user)
    assert generation.credit_cost == first["credits"]
    move(generation.pk, State.CANCELED)
    second = holds.estimate(user=user, resolution="720p", duration=5, list_credits=40)
    assert second["credits"] == 40 and not second["free_preview"]
    assert create(user).credit_cost == second["credits"]
    with pytest.raises(PlanLimit):
        holds.estimate(user=user, resolution="1080p", duration=5, list_credits=90)
