"""The account page where people make, see and revoke their API keys, and try their webhooks:
send a test event, see recent deliveries, send one again."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .forms import ApiKeyForm, WebhookTestForm
from .models import ApiKey, WebhookDelivery
from .services import apikey_create, apikey_revoke
from .webhooks import (
    WebhookUrlRefused,
    loopback_allowed,
    webhook_redeliver,
    webhook_secret_for,
    webhook_send_test,
)

RECENT_DELIVERIES = 20


@login_required
def api_keys(request):
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        api_key, new_key = apikey_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            monthly_credit_cap=form.cleaned_data["monthly_credit_cap"],
            request=request,
        )
        form = ApiKeyForm()
    context = {
        "form": form,
        "new_key": new_key,
        "keys": ApiKey.objects.filter(user=request.user),
        "webhook_secret": webhook_secret_for(request.user),
        "test_form": WebhookTestForm(),
        "loopback_allowed": loopback_allowed(),
        "deliveries": WebhookDelivery.objects.filter(generation__user=request.user)
        .select_related("generation")
        .order_by("-created_at")[:RECENT_DELIVERIES],
    }
    response = render(request, "api/keys.html", context, status=400 if form.errors else 200)
    response["Cache-Control"] = "no-store"  # the page may show a raw key once
    return response


@login_required
@require_POST
def api_key_revoke(request, pk):
    api_key = get_object_or_404(ApiKey, pk=pk, user=request.user)
    if apikey_revoke(api_key=api_key, request=request):
        messages.info(request, f"Revoked {api_key.prefix}…; it no longer works.")
    return redirect("api_keys")


@login_required
@require_POST
def webhook_test(request):
    form = WebhookTestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the full URL of your webhook receiver.")
        return redirect("api_keys")
    try:
        result = webhook_send_test(user=request.user, url=form.cleaned_data["url"])
    except WebhookUrlRefused as exc:
        messages.error(request, str(exc))
        return redirect("api_keys")
    if result["delivered"]:
        messages.success(
            request, f"Test event {result['message_id']} delivered: HTTP {result['status_code']}."
        )
    else:
        messages.error(request, f"Test event {result['message_id']} failed: {result['error']}.")
    return redirect("api_keys")


@login_required
@require_POST
def webhook_redeliver_view(request, pk):
    delivery = get_object_or_404(WebhookDelivery, pk=pk, generation__user=request.user)
    webhook_redeliver(delivery=delivery)
    messages.info(request, f"{delivery.event} {delivery.message_id} will be sent again now.")
    return redirect("api_keys")
