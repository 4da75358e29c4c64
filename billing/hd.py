"""'Render in HD': the same prompt, image, seed and motion again at 1080p, paid in credits."""

from django.core.files.storage import default_storage
from django.db import transaction

from generation import catalogue
from generation.catalogue import InputError
from generation.models import Generation, State, Tier

# Arguments the catalogue fills in or we set ourselves, not user inputs.
_NOT_INPUTS = {"seed", "prompt", "resolution"}


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


def generation_render_hd(*, user, source: Generation) -> Generation:
    """The preview's HD render: the one already made or under way (nothing charged again), or a
    new one at 1080p, paid in credits."""
    if source.user_id != user.pk:
        raise InputError({"generation": "Not your generation."})
    with transaction.atomic():
        # Two clicks on the same preview wait here one after the other, so the second finds the
        # first one's render (PostgreSQL; SQLite runs one write transaction at a time anyway).
        Generation.objects.select_for_update().filter(pk=source.pk).exists()
        existing = hd_version(source)
        if existing is not None:
            return existing
        if not hd_available(source):
            raise InputError({"generation": "Only a finished 720p preview can be rendered in HD."})
        return _render_hd(user=user, source=source)


def _render_hd(*, user, source: Generation) -> Generation:
    from generation.services import generation_create

    endpoint = catalogue.get_endpoint(source.endpoint_id)
    inputs = {
        name: value
        for name, value in source.arguments.items()
        if name in endpoint.fields and name not in _NOT_INPUTS and name != endpoint.media_field
    }
    if "prompt" in endpoint.fields and source.prompt:
        inputs["prompt"] = source.prompt
    inputs["resolution"] = "1080p"
    images = []
    for item in source.inputs.filter(kind="image").order_by("position"):
        with default_storage.open(item.file.name, "rb") as handle:
            images.append(handle.read())
    return generation_create(
        user=user,
        endpoint_id=source.endpoint_id,
        inputs=inputs,
        images=images,
        preset=source.preset,
        seed=source.seed,
        tier=Tier.HD,
        rerender_of=source,
    )
