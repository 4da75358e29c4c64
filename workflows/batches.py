"""Several renders in one action: variations of one request, or a storyboard's scenes.

Each render is a normal generation (generation_create: validated, priced, held, moderated and
settled on its own, plan limits counted one by one), created in the batch's one transaction
with its creative.Recipe. A refusal of any render refuses the whole batch and says which one
and why (how many fit), unless the caller asked for `partial`: then the renders that fit
start and the refusals are listed. Prices are shown before by batch_estimate, which walks the
same limits in the same order without writing.
"""

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.core.files.storage import default_storage
from django.db import transaction

from billing import holds
from billing.limits import allowance_left, is_preview, usage_today
from billing.services import account_for
from core.errors import InputError
from creative.models import Batch, PromptTemplate, Recipe
from generation import catalogue, media
from generation.models import Generation, GenerationInput

from .generations import SEED_LIMIT, generation_create

log = logging.getLogger(__name__)

MIN_VARIATIONS, MAX_VARIATIONS = 2, 4
MAX_SCENES = 5


@dataclass(frozen=True)
class Variant:
    """One render of a batch: its endpoint inputs (prompt…), seed and how it is labelled."""

    inputs: Mapping[str, Any]
    seed: int | None = None
    label: str = ""
    slots: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BatchResult:
    batch: Batch
    generations: list[Generation]
    refused: list[dict]  # {"position", "label", "code", "message"} of renders left out


class BatchRefused(InputError):
    """A render of the batch was refused, so none started; says which and how many fit."""

    def __init__(self, *, position: int, total: int, label: str, cause: InputError, noun: str):
        self.code = getattr(cause, "code", "invalid_input")
        self.http_status = getattr(cause, "http_status", 400)
        self.allowed_by = getattr(cause, "allowed_by", None)
        self.cause = cause
        why = " ".join(cause.errors.values())
        if position == 0:
            fit = "None of them could start."
        else:
            fit = (
                f"The first {position} would fit: ask for {position}, or start those alone "
                "(partial)."
                if position > 1
                else "Only the first would fit: start it alone (partial), or wait."
            )
        message = (
            f"{noun} {position + 1} of {total}{f' ({label})' if label else ''} was "
            f"refused: {why} Nothing was started or charged. {fit}"
        )
        errors = {"batch": message}  # the cause's own fields are in .cause
        super().__init__(errors)


def seeds_for(count: int, first: int | None = None) -> list[int]:
    """`count` different seeds; the first is the one asked for, when one was."""
    seeds = [first] if first is not None else []
    while len(seeds) < count:
        seed = secrets.randbelow(SEED_LIMIT)
        if seed not in seeds:
            seeds.append(seed)
    return seeds


def batch_create(
    *,
    user,
    kind: str,
    endpoint_id: str,
    variants: Sequence[Variant],
    images: Sequence[bytes | BinaryIO] = (),
    video: "media.InputVideo | None" = None,
    preset: str = "static",
    template: PromptTemplate | None = None,
    title: str = "",
    varied: str = "",
    source_text: str = "",
    constraints: str = "",
    partial: bool = False,
    api_key=None,
    suspension_checked: bool = False,
    webhook_url: str = "",
    webhook_events: Sequence[str] = (),
    request=None,
) -> BatchResult:
    """Create the batch and one generation per variant in one transaction (see module)."""
    limit = MAX_VARIATIONS if kind == Batch.Kind.VARIATIONS else MAX_SCENES
    low = MIN_VARIATIONS if kind == Batch.Kind.VARIATIONS else 1
    noun = "Variation" if kind == Batch.Kind.VARIATIONS else "Scene"
    if not low <= len(variants) <= limit:
        raise InputError(
            {
                "variations" if kind == Batch.Kind.VARIATIONS else "scenes": (
                    f"Ask for {low} to {limit} {noun.lower()}s; got {len(variants)}."
                )
            }  # fmt: skip
        )
    # Every render reads the same images: bytes, so that each can read them from the start.
    files = [image if isinstance(image, bytes) else _read(image) for image in images]
    created: list[Generation] = []
    refused: list[dict] = []
    stored: list[str] = []
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                user=user,
                kind=kind,
                title=title[:200],
                varied=varied[:60],
                source_text=source_text,
                template=template,
            )
            for position, variant in enumerate(variants):
                try:
                    generation = generation_create(
                        user=user,
                        endpoint_id=endpoint_id,
                        inputs=dict(variant.inputs),
                        images=files,
                        video=video,
                        preset=preset,
                        seed=variant.seed,
                        api_key=api_key,
                        suspension_checked=suspension_checked,
                        webhook_url=webhook_url,
                        webhook_events=webhook_events,
                        request=request,
                        constraints=constraints,
                    )
                except InputError as exc:
                    if not partial:
                        raise BatchRefused(
                            position=position,
                            total=len(variants),
                            label=variant.label,
                            cause=exc,
                            noun=noun,
                        ) from None
                    refused.append(
                        {
                            "position": position,
                            "label": variant.label,
                            "code": getattr(exc, "code", "invalid_input"),
                            "message": " ".join(exc.errors.values()),
                        }
                    )
                    continue
                stored += list(
                    GenerationInput.objects.filter(generation=generation).values_list(
                        "file", flat=True
                    )
                )
                Recipe.objects.create(
                    generation=generation,
                    template=template,
                    template_slug=template.slug if template else "",
                    slots=dict(variant.slots),
                    batch=batch,
                    position=position,
                    label=variant.label[:200],
                )
                created.append(generation)
            if not created:
                first = refused[0]
                raise InputError(
                    {"batch": f"None of the {len(variants)} could start: {first['message']}"}
                )
            batch.total_credits = sum(g.credit_cost for g in created)
            batch.save(update_fields=["total_credits"])
    except BaseException:
        # The rows are rolled back; the input files the creates stored are nobody's now.
        for name in stored:
            default_storage.delete(name)
        raise
    log.info(
        "batch %s: %s %s renders, %s refused, %s credits",
        batch.pk, len(created), kind, len(refused), batch.total_credits,
    )  # fmt: skip
    return BatchResult(batch=batch, generations=created, refused=refused)


def _read(upload) -> bytes:
    if hasattr(upload, "seek"):
        upload.seek(0)
    return upload.read()


def batch_estimate(
    *,
    user,
    endpoint_id: str,
    inputs: Mapping[str, Any],
    count: int,
    image_count: int = 0,
    has_video: bool = False,
    preset: str = "static",
) -> dict:
    """What `count` renders of this request would hold, one by one as the creates would take
    them (free previews first, then credits; the jobs-in-flight and daily limits per render),
    and which would be refused and why. Raises InputError for input no render could take."""
    valid = catalogue.validate_input(
        endpoint_id, inputs, image_count=image_count, has_video=has_video, preset=preset
    )
    try:
        price = catalogue.price_of(valid)
    except catalogue.PriceUnknown as exc:
        raise InputError({"endpoint": str(exc)}) from None
    first = holds.estimate(
        user=user, resolution=valid.resolution, duration=valid.duration, list_credits=price.credits
    )  # the plan's shape: raises PlanLimit as a create would
    account = account_for(user)
    plan = account.plan_info
    free_left = allowance_left(account) if is_preview(valid.resolution, valid.duration) else 0
    balance = first["balance"]
    in_flight = account.in_flight
    made, _ = usage_today(account)
    renders, total, fits_all = [], 0, True
    for position in range(count):
        why = ""
        free = free_left > 0
        credits = 0 if free else price.credits
        if in_flight >= plan.max_in_flight:
            why = (
                f"Your {plan.name} plan runs {plan.max_in_flight} at a time "
                f"({in_flight} would be running)."
            )
        elif plan.max_generations_per_day and made >= plan.max_generations_per_day:
            why = f"Your {plan.name} plan allows {plan.max_generations_per_day} a day."
        elif credits > balance:
            why = f"It costs {credits} credits and {balance} would be left."
        fits = not why
        if fits:
            free_left -= 1 if free else 0
            balance -= credits
            in_flight += 1
            made += 1
            total += credits
        fits_all = fits_all and fits
        renders.append(
            {
                "position": position,
                "credits": credits,
                "free_preview": free,
                "fits": fits,
                "why": why,
            }  # fmt: skip
        )
    return {
        "endpoint": valid.endpoint.id,
        "resolution": valid.resolution,
        "duration": valid.duration,
        "count": count,
        "total_credits": total,
        "list_credits_each": price.credits,
        "all_fit": fits_all,
        "fitting": sum(1 for r in renders if r["fits"]),
        "renders": renders,
        "price_confirmed": price.confirmed,
    }


def batch_keep(*, user, generation_id, kept: bool = True) -> Recipe:
    """The owner marks one render of a batch as the one to keep (or unmarks it)."""
    recipe = (
        Recipe.objects.select_related("batch")
        .filter(generation_id=generation_id, batch__user=user, generation__deleted_at__isnull=True)
        .first()
    )
    if recipe is None:
        raise InputError({"generation": "Not a render of one of your batches."})
    Recipe.objects.filter(pk=recipe.pk).update(kept=kept)
    recipe.kept = kept
    return recipe


def generation_create_composed(
    *, template: PromptTemplate | None = None, slots: Mapping[str, str] | None = None, **create
) -> Generation:
    """generation_create plus the Recipe naming the template it was filled from, in one
    transaction."""
    with transaction.atomic():
        generation = generation_create(**create)
        if template is not None:
            Recipe.objects.create(
                generation=generation,
                template=template,
                template_slug=template.slug,
                slots=dict(slots or {}),
            )
    return generation
