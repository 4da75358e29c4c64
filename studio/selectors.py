"""Reads for the website's pages."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import OuterRef, Subquery

from billing import holds
from billing.errors import how_to_get_credits
from billing.limits import check_daily_cap, usage_today
from billing.services import account_for
from core.errors import InputError
from generation import catalogue
from generation.models import TERMINAL, Generation, State, Tier
from generation.render import MOTION_PRESETS

from .forms import MODE_HINTS, MODE_LABELS, endpoint_label, version_of


def studio_endpoints() -> list[dict]:
    """What the generate page's script needs to know of each endpoint on the site."""
    rows = []
    for endpoint in catalogue.endpoints():
        if not endpoint.on_website or not catalogue.is_priced(endpoint):
            continue
        rows.append(
            {
                "id": endpoint.id,
                "mode": endpoint.kind,
                "label": endpoint_label(endpoint),
                "version": version_of(endpoint),
                "fields": [
                    *endpoint.fields,
                    *(["image", "image_url"] if endpoint.takes_images else []),
                    *(["video", "video_url"] if endpoint.video_field else []),
                ],
                "images": {"min": endpoint.media_min, "max": endpoint.media_max},
                # What the provider leaves out when "Leave out" is empty (Pikascenes has one).
                "negative_default": str(endpoint.default("negative_prompt") or ""),
                "choices": {
                    name: [str(c) for c in endpoint.choices(name)]
                    for name in (
                        "aspect_ratio",
                        "resolution",
                        "duration",
                        "pikaffect",
                        "ingredients_mode",
                    )
                    if endpoint.choices(name)
                },
                "defaults": {
                    name: str(endpoint.default(name))
                    for name in ("aspect_ratio", "resolution", "duration", "ingredients_mode")
                    if endpoint.default(name) is not None
                },
            }
        )
    return rows


def studio_modes() -> list[dict]:
    """The mode switch: each kind of endpoint the site offers, in plain words."""
    kinds = []
    for row in studio_endpoints():
        if row["mode"] not in kinds:
            kinds.append(row["mode"])
    order = list(MODE_LABELS)
    kinds.sort(key=lambda kind: order.index(kind) if kind in order else len(order))
    return [
        {"value": kind, "label": MODE_LABELS.get(kind, kind.title()), "hint": MODE_HINTS.get(kind)}
        for kind in kinds
    ]


def studio_unavailable() -> list[dict]:
    """Modes and models the catalogue has that the site cannot offer now, and why: retired by
    the provider, or not priced (fal publishes no price; FAL_PRICE_OVERRIDES can set one)."""
    offered = {row["id"] for row in studio_endpoints()}
    rows = []
    for endpoint in catalogue.endpoints(include_retired=True):
        if endpoint.id in offered:
            continue
        why = (
            "retired by the provider"
            if endpoint.retired
            else "not available yet: the provider has published no price for it"
        )
        rows.append({"id": endpoint.id, "label": endpoint_label(endpoint), "why": why})
    return rows


def generate_price(
    *,
    user,
    endpoint_id: str,
    resolution: str = "",
    duration: str = "",
    transitions: list[str] | None = None,
) -> dict:
    """The price of the current choices for the Generate button, by the code that quotes
    /api/v1/estimate (catalogue prices, billing.holds.estimate): a free preview, the credits,
    or why it is not allowed and what to do instead.

    transitions: Keyframes' lengths in seconds, one per move between keyframes; the length
    priced is their sum, checked by the catalogue as a create checks it.
    """
    try:
        endpoint = catalogue.get_endpoint(endpoint_id)
    except InputError as exc:
        return _refused(exc.errors["endpoint"])
    if "transitions" in endpoint.fields:
        lengths = [
            t.strip() or str(endpoint.fields["transitions"]["default_duration"])
            for t in (transitions or [""])
        ]
        try:
            # Keyframes take no required field but the images, so the catalogue's own check
            # gives the length (and refuses one out of bounds) as a create would.
            valid = catalogue.validate_input(
                endpoint.id,
                {
                    **({"resolution": resolution} if resolution else {}),
                    "transitions": [{"duration": seconds} for seconds in lengths],
                },
                image_count=len(lengths) + 1,
            )
        except InputError as exc:
            return _refused(" ".join(exc.errors.values()))
        resolution, duration = valid.resolution, str(valid.duration)
    # An endpoint without the field gets what validate_input gives it: its default, else
    # 720p and 5 s (catalogue._duration_of).
    resolution = resolution or endpoint.default("resolution") or "720p"
    duration = duration or str(endpoint.default("duration") or 5)
    if endpoint.choices("resolution") and resolution not in endpoint.choices("resolution"):
        return _refused(f"{endpoint_label(endpoint)} does not offer {resolution}.")
    choices = [str(c) for c in endpoint.choices("duration")]
    if (choices and duration not in choices) or not duration.isdigit():
        return _refused(f"{endpoint_label(endpoint)} does not offer {duration} s.")
    try:
        usd, confirmed = catalogue.fal_price_usd(endpoint, resolution, int(duration))
        list_credits = catalogue.credits_for_usd(usd)
        estimate = holds.estimate(
            user=user, resolution=resolution, duration=int(duration), list_credits=list_credits
        )
        # The day's cap refuses a create whatever it costs: said before the click, not after.
        account = account_for(user)
        check_daily_cap(account.plan_info, usage_today(account)[0])
    except catalogue.PriceUnknown as exc:
        return _refused(str(exc))
    except InputError as exc:  # PlanLimit: the message names the plan that allows it
        return _refused(" ".join(exc.errors.values()), action="billing")
    result = {**estimate, "allowed": True, "price_confirmed": confirmed, "message": ""}
    if estimate["free_preview"]:
        result["label"] = "Generate · free preview"
        result["message"] = "Free: a preview from today's allowance."
    else:
        result["label"] = f"Generate · {estimate['credits']} credits"
        result["message"] = (
            "Held when you press Generate, charged when the video is ready, refunded if it fails."
        )
    if not estimate["enough"]:
        result.update(
            allowed=False,
            action="billing",
            message=(
                f"This costs {estimate['credits']} credits and you have {estimate['balance']}. "
                + how_to_get_credits()
            ),
        )
    elif estimate["in_flight"] >= estimate["max_in_flight"]:
        # Not refused here: a running video may finish before the click.
        result.update(
            message=(
                f"{estimate['in_flight']} of your videos are still rendering and your plan runs "
                f"{estimate['max_in_flight']} at a time: Generate works again once one finishes."
            ),
        )
    return result


def _refused(message: str, action: str = "") -> dict:
    return {"allowed": False, "label": "Generate", "message": message, "action": action}


def generation_settings(generation) -> list[tuple[str, str]]:
    """The video page's settings in words: model, shape, length, quality, camera, seed."""
    try:
        model = endpoint_label(catalogue.get_endpoint(generation.endpoint_id))
    except InputError:
        model = "A retired model"
    rows = [("Model", model)]
    arguments = generation.arguments
    if arguments.get("pikaffect"):
        rows.append(("Effect", arguments["pikaffect"]))
    if arguments.get("transitions"):
        lengths = " + ".join(f"{t['duration']} s" for t in arguments["transitions"])
        rows.append(("Keyframes", f"{len(arguments['transitions']) + 1}, moving {lengths}"))
    if arguments.get("ingredients_mode"):
        rows.append(("Ingredients", arguments["ingredients_mode"].title()))
    if arguments.get("modify_region"):
        rows.append(("Replaces", arguments["modify_region"]))
    if generation.aspect_ratio:
        rows.append(("Shape", generation.aspect_ratio))
    rows.append(("Length", f"{generation.duration} s"))
    rows.append(
        ("Quality", "1080p HD" if generation.resolution == "1080p" else generation.resolution)
    )
    rows.append(("Camera", MOTION_PRESETS.get(generation.preset, generation.preset)))
    if generation.arguments.get("negative_prompt"):
        rows.append(("Leave out", generation.arguments["negative_prompt"]))
    rows.append(("Seed", str(generation.seed)))
    return rows


# The gallery's state filter: a word people use -> the states it covers.
GALLERY_STATES = {
    "ready": ("Ready", [State.SUCCEEDED]),
    "working": ("In progress", sorted(set(State.values) - TERMINAL)),
    "failed": ("Failed", [State.FAILED, State.BLOCKED]),
    "canceled": ("Canceled", [State.CANCELED]),
}


@dataclass(frozen=True)
class GalleryFilters:
    state: str = ""
    mode: str = ""
    model: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query) -> "GalleryFilters":
        """Unknown values are ignored, never an error: a filter link from an old page still
        shows the gallery."""
        state = query.get("state", "")
        mode = query.get("mode", "")
        model = query.get("model", "")
        return cls(
            state=state if state in GALLERY_STATES else "",
            mode=mode if mode in {m["value"] for m in studio_modes()} else "",
            model=model if model in dict(gallery_models()) else "",
            q=" ".join(query.get("q", "").split())[:200],
        )

    def query_string(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})

    @property
    def states(self):
        return [(value, label) for value, (label, _) in GALLERY_STATES.items()]

    @property
    def modes(self):
        return [(m["value"], m["label"]) for m in studio_modes()]

    @property
    def models(self):
        return gallery_models()


def gallery_models() -> list[tuple[str, str]]:
    """The model filter: every catalogued endpoint, retired ones too (old clips use them),
    in words."""
    return [
        (endpoint.id, endpoint_label(endpoint) + (" (retired)" if endpoint.retired else ""))
        for endpoint in catalogue.endpoints(include_retired=True)
    ]


def gallery_generations(user, filters: GalleryFilters):
    """The user's clips for the gallery, newest first. A preview and its HD render are one
    clip: the HD render is not listed while its preview is, and the preview carries `hd_id`
    (billing.hd.hd_version's rule: an HD render that did not fail, get canceled or blocked)."""
    hd_versions = (
        Generation.objects.filter(rerender_of=OuterRef("pk"), tier=Tier.HD)
        .exclude(state__in=[State.FAILED, State.CANCELED, State.BLOCKED])
        .order_by("-created_at")
        .values("pk")[:1]
    )
    generations = (
        Generation.objects.visible_to(user)
        .exclude(tier=Tier.HD, rerender_of__isnull=False, rerender_of__deleted_at__isnull=True)
        .annotate(hd_id=Subquery(hd_versions))
        .select_related("takedown")
    )
    if filters.state:
        generations = generations.filter(state__in=GALLERY_STATES[filters.state][1])
    if filters.mode:
        ids = [e.id for e in catalogue.endpoints(include_retired=True) if e.kind == filters.mode]
        generations = generations.filter(endpoint_id__in=ids)
    if filters.model:
        generations = generations.filter(endpoint_id=filters.model)
    if filters.q:
        generations = generations.filter(prompt__icontains=filters.q)
    return generations
