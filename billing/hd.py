"""'Render in HD': whether a preview can be rendered again at 1080p, for how many credits, and
its HD version if it has one (the render itself is workflows.generations.generation_render_hd).
"""

from core.errors import InputError
from generation import catalogue
from generation.models import Generation, State, Tier


def hd_available(generation: Generation) -> bool:
    try:
        endpoint = catalogue.get_endpoint(generation.endpoint_id)
    except InputError:
        return False
    return (
        generation.state == State.SUCCEEDED
        and generation.tier == Tier.PREVIEW
        and generation.resolution != "1080p"
        and "1080p" in endpoint.choices("resolution")
        and endpoint.on_website
    )


# An HD render in these states is not (or no longer) the preview's HD version: one may be bought.
_HD_GONE = (State.FAILED, State.CANCELED, State.BLOCKED)


def hd_version(generation: Generation) -> Generation | None:
    """The HD render of this preview, made or under way, if there is one."""
    return (
        Generation.objects.filter(rerender_of=generation, tier=Tier.HD)
        .exclude(state__in=_HD_GONE)
        .order_by("-created_at")
        .first()
    )


def hd_price(generation: Generation) -> int | None:
    """Credits the HD render of this preview costs (what will be held)."""
    try:
        endpoint = catalogue.get_endpoint(generation.endpoint_id)
        usd, _ = catalogue.fal_price_usd(endpoint, "1080p", generation.duration)
    except (InputError, catalogue.PriceUnknown):
        return None
    return catalogue.credits_for_usd(usd)
