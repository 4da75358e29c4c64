"""Stripe with the real stripe-python: Checkout and portal against a local fake API, and
webhooks signed with the test secret — replayed, reordered, forged, stale and future-dated."""

import datetime as dt
import json
import time
import uuid

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.models import CreditAccount, LedgerEntry, PlanChange, StripeEvent

from .conftest import assert_ledger_consistent
from .fakestripe import FakeStripe

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret"


@pytest.fixture
def billing_on(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.BILLING_ENABLED = True
    settings.STRIPE_PRICE_CREATOR = "price_creator"
    settings.STRIPE_PRICE_STUDIO = "price_studio"
    settings.STRIPE_PRICE_PACK_SMALL = "price_small"
    return settings


@pytest.fixture
def fake_stripe(billing_on):
    with FakeStripe() as fake:
        billing_on.STRIPE_API_BASE = fake.base_url
        yield fake


@pytest.fixture
def account(user):
    account = services.account_for(user)
    CreditAccount.objects.filter(pk=account.pk).update(stripe_customer_id="cus_alice")
    account.refresh_from_db()
    return account


def signed(payload: str, *, timestamp: int | None = None, secret: str = SECRET) -> str:
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)


def event(kind: str, obj: dict, *, created: int | None = None, event_id: str | None = None):
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": created or int(time.time()),
        "api_version": "2026-10-28.endive",
        "data": {"object": obj},
    }


def deliver(client, body: dict, **sign):
    payload = json.dumps(body)
    return client.post(
        reverse("stripe_webhook"),
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signed(payload, **sign),
    )


def pack_session(account, *, session_id="cs_test_pack1", paid=True):
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_status": "paid" if paid else "unpaid",
        "customer": account.stripe_customer_id,
        "client_reference_id": str(account.pk),
        "metadata": {
            "account_id": str(account.pk),
            "item": "small",
            "kind": "pack",
            "credits": "500",
        },
    }


# --- Checkout and portal through stripe-python ---------------------------------------------------


def test_checkout_for_a_pack_makes_a_customer_then_a_session(alice_client, user, fake_stripe):
    response = alice_client.post(reverse("billing_checkout", args=["small"]))
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
    customer, session = fake_stripe.calls
    assert customer.path == "/v1/customers"
    assert customer.headers["Authorization"] == "Bearer sk_test_fake"
    assert customer.headers["Idempotency-Key"].startswith("customer-for-account-")
    assert customer.form["email"] == "alice@example.com"
    assert session.path == "/v1/checkout/sessions"
    account = services.account_for(user)
    assert session.form["customer"] == account.stripe_customer_id.strip()
    assert session.form["mode"] == "payment"
    assert session.form["line_items[0][price]"] == "price_small"
    assert session.form["metadata[credits]"] == "500"
    assert session.form["client_reference_id"] == str(account.pk)
    assert session.form["success_url"].startswith("http://testserver/billing/")

    # A second checkout reuses the customer; a subscription sets the plan on the subscription.
    alice_client.post(reverse("billing_checkout", args=["creator"]))
    assert fake_stripe.paths()[2:] == ["/v1/checkout/sessions"]
    sub = fake_stripe.calls[2].form
    assert sub["mode"] == "subscription" and sub["line_items[0][price]"] == "price_creator"
    assert sub["subscription_data[metadata][plan]"] == "creator"


def test_portal_session(alice_client, fake_stripe):
    response = alice_client.post(reverse("billing_portal"))
    assert response.status_code == 302
    assert response["Location"].startswith("https://billing.stripe.test/p/session/")
    assert fake_stripe.paths() == ["/v1/customers", "/v1/billing_portal/sessions"]
    assert fake_stripe.calls[1].form["return_url"] == "http://testserver/billing/"


def test_items_not_on_sale_and_stripe_outages_are_messages(alice_client, fake_stripe):
    response = alice_client.post(reverse("billing_checkout", args=["medium"]), follow=True)
    assert b"not for sale" in response.content
    fake_stripe.fail_next = 10
    response = alice_client.post(reverse("billing_checkout", args=["small"]), follow=True)
    assert b"Stripe is not answering" in response.content


def test_without_keys_billing_pages_say_it_is_off(alice_client, client, settings):
    settings.BILLING_ENABLED = False
    page = alice_client.get(reverse("billing_statement"))
    assert b"Billing is off on this site" in page.content and b"Subscribe" not in page.content
    response = alice_client.post(reverse("billing_checkout", args=["small"]), follow=True)
    assert b"Billing is off" in response.content
    assert (
        client.post(
            reverse("stripe_webhook"), data="{}", content_type="application/json"
        ).status_code
        == 404
    )


# --- Webhooks -----------------------------------------------------------------------------------


def test_pack_is_granted_once_whatever_is_replayed(client, billing_on, account):
    body = event("checkout.session.completed", pack_session(account))
    answers = [deliver(client, body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].content == b"pack granted" and answers[1].content == b"duplicate"
    # The same session in another event (async success after completion) adds nothing either.
    later = event("checkout.session.async_payment_succeeded", pack_session(account))
    assert deliver(client, later).content == b"pack already granted"
    account.refresh_from_db()
    assert account.balance_purchased == 500
    assert LedgerEntry.objects.get().idempotency_key == "stripe:cs_test_pack1"
    assert StripeEvent.objects.count() == 2
    assert_ledger_consistent(account)


def test_delayed_payment_grants_only_on_success(client, billing_on, account):
    unpaid = pack_session(account, paid=False)
    assert deliver(client, event("checkout.session.completed", unpaid)).content == (
        b"waiting for the asynchronous payment"
    )
    failed = pack_session(account, session_id="cs_test_failed", paid=False)
    deliver(client, event("checkout.session.async_payment_failed", failed))
    account.refresh_from_db()
    assert account.balance == 0
    deliver(client, event("checkout.session.async_payment_succeeded", pack_session(account)))
    account.refresh_from_db()
    assert account.balance_purchased == 500


def subscription_events(account, *, start: int, invoice="in_1", period_days=30):
    period_end = start + period_days * 86400
    sub = {
        "id": "sub_1",
        "object": "subscription",
        "customer": account.stripe_customer_id,
        "status": "active",
        "metadata": {"plan": "creator", "account_id": str(account.pk)},
        "items": {"data": [{"price": {"id": "price_creator"}, "current_period_end": period_end}]},
    }
    session = {
        "id": "cs_test_sub",
        "object": "checkout.session",
        "mode": "subscription",
        "payment_status": "paid",
        "customer": account.stripe_customer_id,
        "subscription": "sub_1",
        "metadata": {"account_id": str(account.pk), "item": "creator", "kind": "plan"},
    }
    invoice_obj = {
        "id": invoice,
        "object": "invoice",
        "customer": account.stripe_customer_id,
        "status": "paid",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1", "metadata": {"plan": "creator"}},
        },
        "lines": {
            "data": [
                {
                    "pricing": {"price_details": {"price": "price_creator"}},
                    "period": {"start": start, "end": period_end},
                }
            ]
        },
    }
    return [
        event("checkout.session.completed", session, created=start),
        event("invoice.paid", invoice_obj, created=start + 1),
        event("customer.subscription.updated", sub, created=start + 2),
    ]


def subscription_state(account):
    account.refresh_from_db()
    return (
        account.plan,
        account.balance_monthly,
        account.stripe_subscription_id,
        account.subscription_status,
        account.monthly_expires_at,
    )


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_subscription_is_the_same_whatever_the_event_order(client, billing_on, account, order):
    start = int(time.time()) - 60
    events = subscription_events(account, start=start)
    if order == "reversed":
        events.reverse()
    for body in events:
        assert deliver(client, body).status_code == 200
    for body in events:  # and every one replayed
        assert deliver(client, body).content == b"duplicate"
    end = dt.datetime.fromtimestamp(start + 30 * 86400, tz=dt.UTC)
    assert subscription_state(account) == ("creator", 1500, "sub_1", "active", end)
    assert PlanChange.objects.get().to_plan == "creator"
    assert_ledger_consistent(account)


def test_renewal_expires_the_old_month_and_cancellation_ends_the_plan(client, billing_on, account):
    start = int(time.time()) - 40 * 86400
    for body in subscription_events(account, start=start):
        deliver(client, body)
    # The first period ended 10 days ago; the renewal invoice grants a new month.
    renewal = subscription_events(account, start=start + 30 * 86400, invoice="in_2")[1]
    assert deliver(client, renewal).content == b"monthly credits granted"
    account.refresh_from_db()
    assert account.balance_monthly == 1500
    assert [e.kind for e in LedgerEntry.objects.order_by("id")] == [
        "grant_monthly",
        "expire",
        "grant_monthly",
    ]
    now = int(time.time())
    deleted = event(
        "customer.subscription.deleted",
        {"id": "sub_1", "object": "subscription", "customer": "cus_alice", "status": "canceled"},
        created=now,
    )
    stale = subscription_events(account, start=now - 100)[2]  # an older "active" update
    assert deliver(client, deleted).content == b"plan ended"
    assert deliver(client, stale).content == b"stale event ignored"
    account.refresh_from_db()
    assert account.plan == "free" and account.subscription_status == "canceled"
    assert account.balance_monthly == 1500, "paid-for credits last until their period ends"
    failed = event(
        "invoice.payment_failed",
        {"id": "in_3", "object": "invoice", "customer": "cus_alice"},
        created=now + 5,
    )
    assert deliver(client, failed).content == b"payment failed: marked past due"
    assert_ledger_consistent(account)


@pytest.mark.parametrize(
    ("secret", "offset"),
    [("whsec_wrong", 0), (SECRET, -3600), (SECRET, +3600)],
    ids=["bad signature", "stale", "future"],
)
def test_forged_stale_and_future_webhooks_are_refused(client, billing_on, account, secret, offset):
    body = event("checkout.session.completed", pack_session(account))
    response = deliver(client, body, secret=secret, timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists() and not LedgerEntry.objects.exists()


def test_missing_or_garbled_signature_header_is_refused(client, billing_on, account):
    payload = json.dumps(event("checkout.session.completed", pack_session(account)))
    for header in (None, "garbage", "t=abc,v1=00", f"t={int(time.time())}"):
        extra = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
        response = client.post(
            reverse("stripe_webhook"), data=payload, content_type="application/json", **extra
        )
        assert response.status_code == 400, header
    assert not LedgerEntry.objects.exists()


def test_a_small_clock_skew_is_tolerated(client, billing_on, account):
    body = event("checkout.session.completed", pack_session(account))
    assert deliver(client, body, timestamp=int(time.time()) + 20).status_code == 200


def test_unknown_events_are_acknowledged_and_recorded(client, billing_on, account):
    response = deliver(client, event("charge.refunded", {"id": "ch_1"}))
    assert response.status_code == 200 and response.content == b"ignored"
    assert StripeEvent.objects.get().outcome == "ignored"
    assert timezone.now() - StripeEvent.objects.get().received_at < dt.timedelta(minutes=1)


def test_statement_with_billing_on_offers_plans_and_packs(alice_client, billing_on):
    body = alice_client.get(reverse("billing_statement")).content.decode()
    assert "Billing is off" not in body
    assert "$12.00/month" in body and "Subscribe" in body
    assert "500 credits for $5.00" in body
    assert "1,200 credits" not in body, "a pack without a Stripe price is not on sale"
