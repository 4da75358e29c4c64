from django import template
from django.db.models import Q

from generation.models import Generation, State
from moderation.models import Report
from moderation.services import is_moderator

register = template.Library()


@register.inclusion_tag("desk/pending.html", takes_context=True)
def desk_pending(context):
    """The moderators' waiting work, at the top of the admin index (two counts)."""
    request = context.get("request")
    if request is None or not is_moderator(request.user):
        return {"show": False}
    return {
        "show": True,
        "held": Generation.objects.filter(state=State.HELD).count(),
        "reported": Generation.objects.filter(Q(reports__status=Report.Status.OPEN))
        .distinct()
        .count(),
    }


@register.filter
def seconds(value) -> str:
    """A duration for people: 0.8 s, 42 s, 3.5 min, 1.2 h."""
    if value is None or value == "":
        return "—"
    value = float(value)
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


@register.filter
def stage(period, key: str) -> str:
    """ "p50 / p95" of one stage of a dashboard period, or a dash without samples."""
    figures = period.stages.get(key)
    if not figures:
        return "—"
    return f"{seconds(figures[1])} / {seconds(figures[2])}"


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


@register.filter
def usd(value) -> str:
    return f"${value:,.2f}"


@register.filter
def state_count(period, state: str) -> int:
    return period.states[state]
