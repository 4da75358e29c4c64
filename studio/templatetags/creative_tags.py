from django import template
from django.db.models import Count

from creative.models import Batch

register = template.Library()


@register.inclusion_tag("creative/_collections.html", takes_context=True)
def creative_collections(context, limit: int = 12):
    """The signed-in user's batches, newest first, for the gallery."""
    user = context["request"].user
    rows = (
        Batch.objects.filter(user=user)
        .annotate(renders=Count("recipes"))
        .order_by("-created_at")[:limit]
    )
    return {"collections": list(rows)}
