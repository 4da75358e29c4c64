"""'Render in HD': whether a preview can be rendered again at 1080p, and for how many credits
(the render itself is workflows.generations.generation_render_hd)."""

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


def hd_price(generation: Generation) -> int | None:
    """Credits the HD render of this preview costs (what will be held)."""
    try:
        endpoint = catalogue.get_endpoint(generation.endpoint_id)
        usd, _ = catalogue.fal_price_usd(endpoint, "1080p", generation.duration)
    except (InputError, catalogue.PriceUnknown):
        return None
    return catalogue.credits_for_usd(usd)
