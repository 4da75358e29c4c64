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
