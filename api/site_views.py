"""The account page where people make, see and revoke their API keys."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .forms import ApiKeyForm
from .models import ApiKey
from .services import apikey_create, apikey_revoke
from .webhooks import webhook_secret_for


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
