from django import template

from billing import hd, holds, limits, services

register = template.Library()


@register.simple_tag
def generation_charge(generation) -> dict:
    """What this generation cost: held, charged or refunded, and its HD offer."""
    charge = holds.generation_charge(generation)
    charge["hd_version"] = hd.hd_version(generation) if generation.tier == "preview" else None
    charge["hd_available"] = charge["hd_version"] is None and hd.hd_available(generation)
    charge["hd_price"] = hd.hd_price(generation) if charge["hd_available"] else None
    return charge


@register.simple_tag(takes_context=True)
def billing_summary(context) -> dict:
    user = context["request"].user
    account = services.account_for(user)
    return {
        "account": account,
        "plan": account.plan_info,
        "allowance_left": limits.allowance_left(account),
    }
