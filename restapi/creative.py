"""The API's creative tools (issue 18): templates, constraints, lint hints, variations,
storyboards and reuse of an identical clip. Kept apart from the core create/estimate code
(restapi/views.py calls `compose` and the helpers here) so the two can change separately."""

from dataclasses import dataclass, field

from rest_framework import serializers, status
from rest_framework.response import Response

from core.errors import InputError
from creative import constraints as creative_constraints
from creative import lint, reuse, storyboard, templating
from creative.models import Batch, PromptTemplate
from generation import catalogue
from workflows.batches import (
    MAX_SCENES,
    BatchRefused,
    Variant,
    batch_create,
    batch_estimate,
    seeds_for,
)
from workflows.generations import DuplicateRequest

from .problems import Problem
from .serializers import GenerationSerializer


@dataclass
class Composed:
    """A create or estimate with the creative tools applied."""

    endpoint: str
    inputs: dict
    preset: str
    template: PromptTemplate | None = None
    slots: dict = field(default_factory=dict)
    constraints: str = ""
    constraints_on: bool = True
    variants: list[Variant] | None = None
    varied: str = ""
    force: bool = False
    partial: bool = False
    seed: int | None = None


def _bad(errors: dict) -> Problem:
    return Problem(
        status_code=400,
        code="invalid_input",
        detail="Some fields are invalid: " + ", ".join(errors) + ".",
        errors=errors,
    )


def compose(*, user, serializer, endpoint: str, image_count: int) -> Composed:
    """Fill the template, apply its settings and the constraints, expand variations.

    `endpoint` is the request's (or the default by image count); a template's own endpoint
    is used when the request named none and the template suits the inputs given.
    """
    data, initial = serializer.validated_data, serializer.initial_data
    inputs = serializer.endpoint_inputs()
    preset = data.get("preset", "static")
    template, slots = None, {}
    if data.get("template"):
        try:
            template = templating.template_get(user=user, slug=data["template"])
        except InputError as exc:
            raise _bad(exc.errors) from None
        if inputs.get("prompt"):
            raise _bad({"prompt": "Give a prompt or a template with slots, not both."})
        suits = catalogue.get_endpoint(template.endpoint_id)
        if not data.get("endpoint") and suits.takes_images == bool(image_count):
            endpoint = suits.id
        for name, value in templating.template_suggestions(template, endpoint).items():
            if name == "preset":
                if "preset" not in initial:
                    preset = value
            elif name not in inputs:
                inputs[name] = value
    elif data.get("slots") or data.get("vary_slot") or data.get("vary_values"):
        raise _bad({"template": "slots and vary_slot need a template."})

    variants, varied = None, ""
    if data.get("vary_values") or data.get("vary_slot"):
        name, values = data.get("vary_slot", ""), data.get("vary_values") or []
        if not name or not values:
            raise _bad({"vary_slot": "Give vary_slot and vary_values together."})
        if name not in {slot["name"] for slot in template.slots}:
            raise _bad({"vary_slot": f"{template.slug} has no slot {name!r}."})
        if data.get("variations") and data["variations"] != len(values):
            raise _bad({"variations": f"vary_values has {len(values)} values."})
        seed = seeds_for(1, data.get("seed"))[0]  # one seed: only the slot differs
        variants = []
        for value in values:
            filled = _fill(template, {**data.get("slots", {}), name: value})
            variants.append(
                Variant(
                    inputs={**inputs, "prompt": filled.prompt},
                    seed=seed,
                    label=value,
                    slots=filled.slots,
                )  # fmt: skip
            )
        varied = name
    if template is not None:
        filled = _fill(template, data.get("slots"))
        inputs["prompt"], slots = filled.prompt, filled.slots
    if variants is None and data.get("variations"):
        variants = [
            Variant(inputs=inputs, seed=seed, label=f"Seed {seed}", slots=slots)
            for seed in seeds_for(data["variations"], data.get("seed"))
        ]
        varied = "seed"

    choice = creative_constraints.resolve(
        user, on=data.get("constraints"), terms=data.get("constraints_text")
    )
    return Composed(
        endpoint=endpoint,
        inputs=inputs,
        preset=preset,
        template=template,
        slots=slots,
        constraints=choice.terms if choice.on else "",
        constraints_on=choice.on,
        variants=variants,
        varied=varied,
        force=data.get("force", False),
        partial=data.get("partial", False),
        seed=data.get("seed"),
    )


def _fill(template, slots):
    try:
        return templating.template_fill(template, slots)
    except InputError as exc:
        raise _bad(exc.errors) from None


def duplicate_problem(exc: DuplicateRequest, request) -> Problem:
    existing = exc.existing
    return Problem(
        status_code=409,
        code="duplicate",
        detail=" ".join(exc.errors.values()),
        errors=exc.errors,
        duplicate_of={
            "id": str(existing.pk),
            "state": existing.state,
            "created_at": existing.created_at.isoformat(),
            "url": request.build_absolute_uri(f"/api/v1/generations/{existing.pk}"),
        },
    )


def batch_problem(exc: BatchRefused) -> Problem:
    extra = {"allowed_by": exc.allowed_by} if exc.allowed_by else {}
    return Problem(
        status_code=exc.http_status,
        code=exc.code,
        detail=exc.errors["batch"],
        errors=exc.errors,
        **extra,
    )


def batch_document(batch: Batch, generations, refused, context) -> dict:
    return {
        "batch": {
            "id": str(batch.pk),
            "kind": batch.kind,
            "title": batch.title,
            "varied": batch.varied,
            "total_credits": batch.total_credits,
            "created_at": batch.created_at.isoformat(),
        },
        "generations": [GenerationSerializer(g, context=context).data for g in generations],
        "refused": refused,
    }


def create_batch(*, request, composed: Composed, images, video, api_key, data, context):
    try:
        result = batch_create(
            user=request.user,
            kind=Batch.Kind.VARIATIONS,
            endpoint_id=composed.endpoint,
            variants=composed.variants,
            images=images,
            video=video,
            preset=composed.preset,
            template=composed.template,
            title=(composed.variants[0].inputs.get("prompt") or "")[:200],
            varied=composed.varied,
            constraints=composed.constraints,
            partial=composed.partial,
            api_key=api_key,
            suspension_checked=api_key is not None,
            webhook_url=data.get("webhook_url") or "",
            webhook_events=data.get("webhook_events", []),
            request=request,
        )
    except BatchRefused as exc:
        raise batch_problem(exc) from None
    body = batch_document(result.batch, result.generations, result.refused, context)
    return Response(
        body,
        status=status.HTTP_201_CREATED,
        headers={"Location": request.build_absolute_uri(f"/api/v1/batches/{result.batch.pk}")},
    )


def estimate_extras(*, user, composed: Composed, valid, image_count: int, has_video: bool):
    """The estimate's creative part: final prompt, constraints, lint hints, variations."""
    negative = valid.arguments.get("negative_prompt", "")
    applies = "negative_prompt" in valid.endpoint.fields
    if composed.constraints and applies:
        negative = creative_constraints.with_constraints(negative, composed.constraints)
    extras = {
        "prompt": valid.arguments.get("prompt", ""),
        "negative_prompt": negative,
        "template": composed.template.slug if composed.template else None,
        "constraints": {
            "on": composed.constraints_on,
            "terms": composed.constraints if composed.constraints else "",
            "applies": applies,
        },
        "hints": [
            hint.as_dict()
            for hint in lint.prompt_hints(
                valid.prompt,
                endpoint_id=valid.endpoint.id,
                preset=composed.preset,
                image_count=image_count,
                aspect_ratio=valid.aspect_ratio or "",
            )
        ],
    }
    seed = None if composed.variants else composed.seed
    if seed is not None and not image_count and not has_video:
        # The same request as a clip of yours: said before anything is spent (with images the
        # create compares the files themselves).
        arguments = dict(valid.arguments)
        if composed.constraints and applies:
            arguments["negative_prompt"] = negative
        existing = reuse.existing_clip(
            user=user,
            digest=reuse.request_digest(
                endpoint_id=valid.endpoint.id,
                arguments={**arguments, "seed": seed},
                preset=valid.preset,
            ),
        )
        if existing is not None:
            extras["duplicate_of"] = {
                "id": str(existing.pk),
                "state": existing.state,
                "created_at": existing.created_at.isoformat(),
            }
    if composed.variants:
        extras["variations"] = batch_estimate(
            user=user,
            endpoint_id=composed.endpoint,
            inputs=composed.variants[0].inputs,
            count=len(composed.variants),
            image_count=image_count,
            has_video=has_video,
            preset=composed.preset,
        )
    return extras


# --- Endpoints of their own -------------------------------------------------------------------


class TemplateSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    kind_label = serializers.CharField()
    description = serializers.CharField()
    text = serializers.CharField()
    slots = serializers.ListField(child=serializers.DictField())
    preview = serializers.CharField(help_text="The final prompt with the slots' defaults")
    endpoint = serializers.CharField(help_text="The catalogue endpoint it suits")
    settings = serializers.DictField()
    shared = serializers.BooleanField()


class TemplateListSerializer(serializers.Serializer):
    templates = TemplateSerializer(many=True)


class StoryboardSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=storyboard.MAX_TEXT_CHARS)
    template = serializers.CharField(required=False, max_length=60)
    slots = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200), required=False
    )
    scenes = serializers.ListField(
        child=serializers.CharField(max_length=2000),
        required=False,
        max_length=MAX_SCENES,
        help_text="Your edited scene prompts (from a draft); without them the text is split",
    )
    endpoint = serializers.CharField(required=False)
    aspect_ratio = serializers.CharField(required=False)
    resolution = serializers.CharField(required=False)
    duration = serializers.IntegerField(required=False)
    constraints = serializers.BooleanField(required=False)
    title = serializers.CharField(required=False, max_length=200)
    draft = serializers.BooleanField(
        default=False, help_text="Only split and price: return the scenes to edit"
    )


# --- Response documents (what batch_document and the storyboard draft return) ----------------


class BatchSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=Batch.Kind.choices)
    title = serializers.CharField(allow_blank=True)
    varied = serializers.CharField(
        allow_blank=True, help_text="What differs between the renders: seed or a slot's name"
    )
    total_credits = serializers.IntegerField(min_value=0)
    created_at = serializers.DateTimeField()


class BatchRefusalSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)
    label = serializers.CharField(allow_blank=True)
    code = serializers.CharField()
    message = serializers.CharField()


class BatchCreatedSerializer(serializers.Serializer):
    """A create with `variations`, or a storyboard queued: the batch and its renders."""

    batch = BatchSummarySerializer()
    generations = GenerationSerializer(many=True)
    refused = BatchRefusalSerializer(
        many=True, help_text="Renders left out with `partial: true`, and why"
    )


class BatchGenerationSerializer(GenerationSerializer):
    label = serializers.CharField(help_text="The variation's value or the scene's text")
    kept = serializers.BooleanField(help_text="Whether you marked it as the one to keep")

    class Meta(GenerationSerializer.Meta):
        fields = [*GenerationSerializer.Meta.fields, "label", "kept"]


class BatchDetailSerializer(serializers.Serializer):
    batch = BatchSummarySerializer()
    generations = BatchGenerationSerializer(many=True)


class BatchRenderPriceSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=0)
    credits = serializers.IntegerField(min_value=0)
    free_preview = serializers.BooleanField()
    fits = serializers.BooleanField()
    why = serializers.CharField(allow_blank=True, help_text="Why it would not start, if not")


class BatchPriceSerializer(serializers.Serializer):
    endpoint = serializers.CharField()
    resolution = serializers.CharField()
    duration = serializers.IntegerField(min_value=1)
    count = serializers.IntegerField(min_value=1)
    total_credits = serializers.IntegerField(min_value=0)
    list_credits_each = serializers.IntegerField(min_value=0)
    all_fit = serializers.BooleanField()
    fitting = serializers.IntegerField(min_value=0)
    renders = BatchRenderPriceSerializer(many=True)
    price_confirmed = serializers.BooleanField()


class StoryboardSceneSerializer(serializers.Serializer):
    text = serializers.CharField()
    prompt = serializers.CharField()


class StoryboardDraftSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["offline", "openai", "yours"])
    note = serializers.CharField(allow_blank=True)
    template = serializers.CharField()
    scenes = StoryboardSceneSerializer(many=True)
    price = BatchPriceSerializer()
