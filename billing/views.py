import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import limits, plans, selectors, services, stripe_billing

log = logging.getLogger(__name__)


@login_required
def statement(request):
    """Plan, balances, today's free previews and every credit movement."""
    account = services.account_for(request.user)
    page = Paginator(selectors.statement_rows(account), 50).get_page(request.GET.get("page"))
    context = {
        "account": account,
        "plan": account.plan_info,
        "allowance_left": limits.allowance_left(account),
        "page": page,
        "plans": [p for p in plans.plans().values()],
        # Offline every pack is shown with its price (nothing is sold); with Stripe, those on sale.
        "packs": [
            p for p in plans.packs().values() if p.stripe_price or not settings.BILLING_ENABLED
        ],
        "billing_enabled": settings.BILLING_ENABLED,
    }
    return render(request, "billing/statement.html", context)


@login_required
@require_POST
def checkout(request, item: str):
    if not settings.BILLING_ENABLED:
        messages.error(request, "Billing is off on this site; ask staff for credits.")
        return redirect("billing_statement")
    back = request.build_absolute_uri(reverse("billing_statement"))
    try:
        url = stripe_billing.checkout_create(
            user=request.user,
            item=item,
            success_url=f"{back}?checkout=done",
            cancel_url=f"{back}?checkout=canceled",
        )
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("billing_statement")
    except stripe_billing.stripe.StripeError as exc:
        log.warning("stripe checkout failed: %s", exc)
        messages.error(request, "Stripe is not answering; please try again in a minute.")
        return redirect("billing_statement")
    return redirect(url)


@login_required
@require_POST
def portal(request):
    if not settings.BILLING_ENABLED:
        messages.error(request, "Billing is off on this site.")
        return redirect("billing_statement")
    try:
        url = stripe_billing.portal_create(
            user=request.user, return_url=request.build_absolute_uri(reverse("billing_statement"))
        )
    except stripe_billing.stripe.StripeError as exc:
        log.warning("stripe portal failed: %s", exc)
        messages.error(request, "Stripe is not answering; please try again in a minute.")
        return redirect("billing_statement")
    return redirect(url)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's events: verified, de-duplicated, applied in one short transaction."""
    if not settings.BILLING_ENABLED:
        return HttpResponse("billing is off", status=404)
    try:
        event = stripe_billing.verify(request.body, request.headers.get("Stripe-Signature"))
    except stripe_billing.BadSignature as exc:
        log.warning("stripe webhook refused: %s", exc)
        return HttpResponseBadRequest("bad signature")
    outcome = stripe_billing.event_process(event)
    return HttpResponse(outcome, content_type="text/plain")
