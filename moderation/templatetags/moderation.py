from django import template

from ..forms import ReportForm
from ..services import moderation_notice as _notice

register = template.Library()


@register.inclusion_tag("moderation/notice.html")
def moderation_notice(generation):
    """What the generation page says about a held, blocked or taken-down row (or nothing)."""
    return {"notice": _notice(generation), "g": generation}


@register.inclusion_tag("moderation/report_form.html", takes_context=True)
def report_form(context, generation):
    """A collapsible 'Report this video' form; render it for outputs the viewer can see."""
    return {"g": generation, "form": ReportForm(), "csrf_token": context.get("csrf_token")}
