from django.conf import settings


def billing(request):
    """The signed-in user's balance for the navigation bar (one query, cached per request)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"billing_enabled": settings.BILLING_ENABLED}
    from .models import CreditAccount

    account = CreditAccount.objects.filter(user=user).first()
    return {
        "billing_enabled": settings.BILLING_ENABLED,
        "credit_balance": account.balance if account else 0,
        "credit_plan": account.plan_info if account else None,
    }
