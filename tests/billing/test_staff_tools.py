"""Staff grant / adjust credits and change plans (admin and command), with who and why."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.services import user_ensure_demo
from billing import services
from billing.models import LedgerEntry, PlanChange
from core.models import AppendOnly

from .conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db


def test_admin_grants_and_adjusts_credits_with_a_reason(admin_client, admin_user, user):
    account = services.account_for(user)
    url = reverse("admin:billing_creditaccount_adjust", args=[account.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"amount": 300, "bucket": "purchased", "reason": "apology"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.actor) == ("adjust", 300, admin_user)
    assert entry.reason.startswith("apology")
    response = admin_client.post(url, {"amount": -500, "bucket": "purchased", "reason": "oops"})
    assert response.status_code == 200 and b"the purchased balance is 300" in response.content
    admin_client.post(url, {"amount": -100, "bucket": "purchased", "reason": "refund by card"})
    account.refresh_from_db()
    assert account.balance == 200
    assert_ledger_consistent(account)
    changelist = admin_client.get(reverse("admin:billing_creditaccount_changelist"))
    assert b"Grant / adjust credits" in changelist.content
    assert (
        admin_client.get(
            reverse("admin:billing_creditaccount_change", args=[account.pk])
        ).status_code
        == 200
    )
    assert admin_client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200


def test_admin_changes_plans_with_who_and_why(admin_client, admin_user, user):
    account = services.account_for(user)
    url = reverse("admin:billing_creditaccount_plan", args=[account.pk])
    response = admin_client.post(
        url, {"plan": "creator", "reason": "partner", "grant_credits": "on"}
    )
    assert response.status_code == 302
    change = PlanChange.objects.get()
    assert (change.from_plan, change.to_plan, change.actor, change.reason) == (
        "free",
        "creator",
        admin_user,
        "partner",
    )
    account.refresh_from_db()
    assert account.plan == "creator" and account.balance_monthly == 1500


def test_ledger_is_append_only_in_code_and_admin(admin_client, user):
    account = services.account_for(user)
    services.credits_purchase(account=account, credits=5, key="k", reason="t")
    entry = LedgerEntry.objects.get()
    entry.amount = 500
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=1)
    with pytest.raises(AppendOnly):
        LedgerEntry.objects.all().delete()
    change = reverse("admin:billing_ledgerentry_change", args=[entry.pk])
    assert admin_client.post(change, {"amount": 1}).status_code == 403
    delete = reverse("admin:billing_ledgerentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.get().amount == 5


def test_grant_credits_command(user, admin_user, capsys):
    call_command(
        "grant_credits", user.email, "250", "--reason", "beta tester", "--by", admin_user.email
    )
    assert "250 purchased = 250 credits" in capsys.readouterr().out
    entry = LedgerEntry.objects.get()
    assert entry.actor == admin_user and "beta tester" in entry.reason
    call_command("grant_credits", user.email, "0", "--reason", "upgrade", "--plan", "studio")
    assert services.account_for(user).plan == "studio"
    with pytest.raises(CommandError, match="purchased balance is 250"):
        call_command("grant_credits", user.email, "-999", "--reason", "x")
    with pytest.raises(CommandError, match="No user"):
        call_command("grant_credits", "nobody@example.com", "5", "--reason", "x")


def test_demo_account_gets_starting_credits_once(settings):
    settings.DEMO_CREDITS = 500
    user, _ = user_ensure_demo(email="demo@example.com", password="pw-demo-123")
    user_ensure_demo(email="demo@example.com", password="pw-demo-123")
    assert services.account_for(user).balance_purchased == 500


def test_deleting_a_user_takes_their_ledger_with_them(user):
    from tests.factories import GenerationFactory

    account = services.account_for(user)
    services.credits_purchase(account=account, credits=5, key="k", reason="t")
    generation = GenerationFactory(user=user)
    services.ledger_apply(
        account_id=account.pk, kind="hold", key="h", purchased=-5, generation_id=generation.pk
    )
    generation.delete()
    assert LedgerEntry.objects.get(idempotency_key="h").generation_id is None
    user.delete()
    assert not LedgerEntry.objects.exists()
