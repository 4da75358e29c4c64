"""Stripe: Checkout, the customer portal and the webhook, with real stripe-python.

Fulfilment is keyed by Stripe's own ids (`stripe:cs_…` for a pack's Checkout Session,
`stripe:in_…` for a subscription invoice), events are de-duplicated by event id, and plan
state only moves forward in event time, so replays and any delivery order give one result.
"""

import datetime as dt
import json
import logging
import time

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import plans, services
from .models import CreditAccount, PlanChange, StripeEvent

log = logging.getLogger(__name__)


class BillingOff(Exception):
    pass


class BadSignature(Exception):
    pass


def client() -> stripe.StripeClient:
    if not settings.BILLING_ENABLED:
        raise BillingOff("Billing is off: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET.")
    options = {}
    if settings.STRIPE_API_BASE:
        options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, max_network_retries=2, **options)


def _customer_for(account: CreditAccount, api: stripe.StripeClient) -> str:
    """Our account's Stripe customer, made once and stored before any Checkout, so that every
    later event (invoice, subscription) names a customer we already know."""
    if account.stripe_customer_id:
        return account.stripe_customer_id
    customer = api.v1.customers.create(
        params={"email": account.user.email, "metadata": {"account_id": str(account.pk)}},
        options={"idempotency_key": f"customer-for-account-{account.pk}"},
    )
    CreditAccount.objects.filter(pk=account.pk, stripe_customer_id__isnull=True).update(
        stripe_customer_id=customer.id
    )
    account.refresh_from_db(fields=["stripe_customer_id"])
    return account.stripe_customer_id


def checkout_create(*, user, item: str, success_url: str, cancel_url: str) -> str:
    """A Checkout Session for a pack (one-time payment) or a plan (subscription); its URL."""
    api = client()
    account = services.account_for(user)
    pack = plans.packs().get(item)
    plan = plans.plans().get(item)
    metadata = {"account_id": str(account.pk), "item": item}
    if pack is not None and pack.stripe_price:
        params = {
            "mode": "payment",
            "line_items": [{"price": pack.stripe_price, "quantity": 1}],
            "metadata": {**metadata, "kind": "pack", "credits": str(pack.credits)},
            "payment_intent_data": {"metadata": metadata},
        }
    elif plan is not None and plan.paid and plan.stripe_price:
        params = {
            "mode": "subscription",
            "line_items": [{"price": plan.stripe_price, "quantity": 1}],
            "metadata": {**metadata, "kind": "plan"},
            "subscription_data": {"metadata": {**metadata, "plan": plan.code}},
        }
    else:
        raise ValueError(f"{item!r} is not for sale")
    session = api.v1.checkout.sessions.create(
        params={
            **params,
            "customer": _customer_for(account, api),
            "client_reference_id": str(account.pk),
            "success_url": success_url,
            "cancel_url": cancel_url,
        }
    )
    log.info("checkout %s for account %s: %s", session.id, account.pk, item)
    return session.url


def portal_create(*, user, return_url: str) -> str:
    api = client()
    account = services.account_for(user)
    session = api.v1.billing_portal.sessions.create(
        params={"customer": _customer_for(account, api), "return_url": return_url}
    )
    return session.url


# --- Webhook ------------------------------------------------------------------------------------


def verify(payload: bytes, signature: str | None) -> dict:
    """Check the Stripe-Signature header (HMAC and age, via stripe-python) and refuse
    timestamps from the future too, which stripe-python does not."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
        timestamp, _ = stripe.WebhookSignature._get_timestamp_and_signatures(
            signature, stripe.WebhookSignature.EXPECTED_SCHEME
        )
    except (stripe.SignatureVerificationError, ValueError, IndexError) as exc:
        raise BadSignature(str(exc)) from None
    if timestamp > time.time() + settings.STRIPE_WEBHOOK_FUTURE_SKEW:
        raise BadSignature("Timestamp is in the future")
    try:
        event = json.loads(payload)
    except ValueError:
        raise BadSignature("Body is not JSON") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise BadSignature("Not a Stripe event")
    return event


HANDLED = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
}


def event_process(event: dict) -> str:
    """Apply a verified event once. The event row and its effects commit together, so a crash
    in between leaves neither and Stripe's retry does the work."""
    kind = event["type"]
    created = dt.datetime.fromtimestamp(int(event.get("created") or time.time()), tz=dt.UTC)
    try:
        with transaction.atomic():
            record = StripeEvent.objects.create(event_id=event["id"], type=kind, created=created)
            obj = (event.get("data") or {}).get("object") or {}
            outcome = _dispatch(kind, obj, created) if kind in HANDLED else "ignored"
            StripeEvent.objects.filter(pk=record.pk).update(
                outcome=outcome[:200], **_income(outcome, obj)
            )
    except IntegrityError:
        if StripeEvent.objects.filter(event_id=event["id"]).exists():
            return "duplicate"
        raise
    log.info("stripe event %s %s: %s", event["id"], kind, outcome)
    return outcome


# The outcomes of the events that were paid for: the one event per payment that granted.
PAID_OUTCOMES = frozenset({"pack granted", "monthly credits granted"})


def _income(outcome: str, obj: dict) -> dict:
    """What the customer paid with this event (a session's amount_total, an invoice's
    amount_paid), if it is the one that granted the credits."""
    if outcome not in PAID_OUTCOMES:
        return {}
    amount = obj.get("amount_total", obj.get("amount_paid"))
    if not isinstance(amount, int) or amount < 0:
        return {}
    return {"income_minor": amount, "currency": str(obj.get("currency") or "")[:3].lower()}


def _dispatch(kind: str, obj: dict, created: dt.datetime) -> str:
    if kind.startswith("checkout.session."):
        return _checkout_event(kind, obj, created)
    if kind.startswith("invoice."):
        return _invoice_event(kind, obj, created)
    return _subscription_event(kind, obj, created)


def _account_of(obj: dict) -> CreditAccount | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if customer:
        account = CreditAccount.objects.filter(stripe_customer_id=customer).first()
        if account:
            return account
    for source in (obj.get("metadata") or {}, {"account_id": obj.get("client_reference_id")}):
        account_id = source.get("account_id")
        if account_id and str(account_id).isdigit():
            account = CreditAccount.objects.filter(pk=int(account_id)).first()
            if account:
                return account
    return None


def _checkout_event(kind: str, session: dict, created: dt.datetime) -> str:
    account = _account_of(session)
    if account is None:
        return f"no account for session {session.get('id')}"
    metadata = session.get("metadata") or {}
    if session.get("mode") == "subscription" or metadata.get("kind") == "plan":
        # Credits come with invoice.paid; here we only learn the subscription id early.
        subscription = session.get("subscription")
        if isinstance(subscription, dict):
            subscription = subscription.get("id")
        if subscription and not account.stripe_subscription_id:
            CreditAccount.objects.filter(pk=account.pk, stripe_subscription_id="").update(
                stripe_subscription_id=subscription
            )
        return "subscription checkout noted"
    if kind == "checkout.session.async_payment_failed":
        return "payment failed: nothing granted"
    paid = session.get("payment_status") in ("paid", "no_payment_required")
    if kind == "checkout.session.completed" and not paid:
        return "waiting for the asynchronous payment"
    pack = plans.packs().get(metadata.get("item", ""))
    try:
        credits = int(metadata.get("credits") or (pack.credits if pack else 0))
    except ValueError:
        credits = 0
    if credits <= 0:
        return f"unknown pack {metadata.get('item')!r}"
    granted = services.credits_purchase(
        account=account,
        credits=credits,
        key=f"stripe:{session['id']}",
        reason=f"{pack.name if pack else metadata.get('item')} (Stripe {session['id']})",
    )
    return "pack granted" if granted else "pack already granted"


def _invoice_parts(invoice: dict) -> tuple[str, str, dict, int | None]:
    """(subscription id, price id, subscription metadata, period end) across API versions."""
    subscription = invoice.get("subscription") or ""
    metadata: dict = {}
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    if details:
        subscription = subscription or details.get("subscription") or ""
        metadata = details.get("metadata") or {}
    if isinstance(subscription, dict):
        subscription = subscription.get("id", "")
    price, period_end = "", None
    for line in (invoice.get("lines") or {}).get("data") or []:
        line_price = line.get("price") or (line.get("pricing") or {}).get("price_details", {})
        candidate = line_price.get("id") or line_price.get("price") or ""
        if isinstance(candidate, dict):
            candidate = candidate.get("id", "")
        if candidate:
            price = candidate
            period_end = (line.get("period") or {}).get("end")
            break
    return subscription, price, metadata, period_end


def _plan_from(price: str, metadata: dict) -> plans.Plan | None:
    return plans.plan_for_stripe_price(price) or plans.plans().get(metadata.get("plan", ""))


def _invoice_event(kind: str, invoice: dict, created: dt.datetime) -> str:
    account = _account_of(invoice)
    if account is None:
        return f"no account for invoice {invoice.get('id')}"
    subscription, price, metadata, period_end = _invoice_parts(invoice)
    plan = _plan_from(price, metadata)
    if kind == "invoice.payment_failed":
        _subscription_state(account, created, status="past_due", subscription=subscription)
        return "payment failed: marked past due"
    if plan is None or not plan.paid:
        return f"invoice {invoice.get('id')} is not for a plan"
    end = (
        dt.datetime.fromtimestamp(int(period_end), tz=dt.UTC)
        if period_end
        else timezone.now() + dt.timedelta(days=31)
    )
    granted = services.monthly_grant(
        account=account,
        credits=plan.monthly_credits,
        period_end=end,
        key=f"stripe:{invoice['id']}",
        reason=f"{plan.name} plan, monthly credits (Stripe {invoice['id']})",
    )
    _subscription_state(
        account, created, status="active", subscription=subscription, plan=plan.code
    )
    return "monthly credits granted" if granted else "monthly credits already granted"


def _subscription_event(kind: str, sub: dict, created: dt.datetime) -> str:
    account = _account_of(sub)
    if account is None:
        return f"no account for subscription {sub.get('id')}"
    if kind == "customer.subscription.deleted":
        moved = _subscription_state(
            account, created, status="canceled", subscription=sub.get("id", ""), plan=plans.FREE
        )
        return "plan ended" if moved else "stale event ignored"
    price = ""
    for item in (sub.get("items") or {}).get("data") or []:
        item_price = item.get("price") or {}
        price = item_price.get("id", "") if isinstance(item_price, dict) else str(item_price)
        if price:
            break
    plan = _plan_from(price, sub.get("metadata") or {})
    status = sub.get("status", "")
    on_plan = status in ("active", "trialing", "past_due")
    moved = _subscription_state(
        account,
        created,
        status=status,
        subscription=sub.get("id", ""),
        plan=(plan.code if plan and on_plan else plans.FREE if not on_plan else None),
    )
    return "subscription updated" if moved else "stale event ignored"


def _subscription_state(
    account: CreditAccount,
    created: dt.datetime,
    *,
    status: str,
    subscription: str = "",
    plan: str | None = None,
) -> bool:
    """Move plan/subscription fields only forward in event time (Stripe's event.created)."""
    account = CreditAccount.objects.select_for_update().get(pk=account.pk)
    if account.plan_event_at and created < account.plan_event_at:
        return False
    if (
        subscription
        and account.stripe_subscription_id
        and subscription != account.stripe_subscription_id
        and status == "canceled"
    ):
        return False  # the end of an older subscription does not end the current one
    changes = {"subscription_status": status, "plan_event_at": created}
    if subscription:
        changes["stripe_subscription_id"] = "" if status == "canceled" else subscription
    if plan and plan != account.plan:
        changes["plan"] = plan
        PlanChange(
            account=account,
            from_plan=account.plan,
            to_plan=plan,
            source=PlanChange.Source.STRIPE,
            reason=f"Stripe subscription {subscription or '?'} {status}",
        ).save()
    CreditAccount.objects.filter(pk=account.pk).update(**changes, updated_at=timezone.now())
    return True
