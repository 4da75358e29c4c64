"""The creative tools' own API operations: templates, batches, storyboards (issue 18)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from api.models import ApiKey, Scope
from core.errors import InputError
from creative import constraints as creative_constraints
from creative import storyboard, templating
from creative.models import Batch
from generation import catalogue
from workflows.batches import BatchRefused, Variant, batch_create, batch_estimate

from .creative import (
    BatchCreatedSerializer,
    BatchDetailSerializer,
    StoryboardDraftSerializer,
    StoryboardSerializer,
    TemplateListSerializer,
    TemplateSerializer,
    batch_document,
    batch_problem,
)
from .views import ApiView, output_urls, refusal


class TemplateSaveSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=100)
    text = serializers.CharField(max_length=2000, help_text="The prompt, slots as {name}")
    endpoint = serializers.CharField(default=catalogue.DEFAULT_TEXT_ENDPOINT)
    defaults = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200), required=False
    )
    settings = serializers.DictField(required=False)


class Templates(ApiView):
    """The prompt templates you can use (yours first, then the shared library); save your own."""

    required_scopes = {"GET": Scope.GENERATIONS_READ, "POST": Scope.GENERATIONS_WRITE}

    @extend_schema(
        operation_id="templates_list",
        summary="List prompt templates",
        description="The shared prompt templates and your own, each with its slots, a preview "
        "of the filled prompt and the endpoint and settings it suits.",
        tags=["creative"],
        responses={200: TemplateListSerializer},
    )
    def get(self, request):
        rows = templating.templates_for(request.user)
        kind = request.query_params.get("kind")
        if kind:
            rows = [t for t in rows if t.kind == kind]
        return Response({"templates": [templating.template_document(t) for t in rows]})

    @extend_schema(
        operation_id="templates_create",
        summary="Save a prompt template",
        description="Save a template of your own (a text with {slot} names, defaults and "
        "settings); it is listed for you only.",
        tags=["creative"],
        request={"application/json": TemplateSaveSerializer},
        responses={201: TemplateSerializer},
    )
    def post(self, request):
        serializer = TemplateSaveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            template = templating.template_save(
                user=request.user,
                title=data["title"],
                text=data["text"],
                endpoint_id=data["endpoint"],
                defaults=data.get("defaults"),
                settings=data.get("settings"),
            )
        except InputError as exc:
            raise refusal(exc) from None
        return Response(templating.template_document(template), status=status.HTTP_201_CREATED)


class BatchDetail(ApiView):
    """A batch (variations or a storyboard) with its generations in order."""

    required_scopes = {"GET": Scope.GENERATIONS_READ}

    @extend_schema(
        operation_id="batches_retrieve",
        summary="Get a batch",
        description="A batch of variations or a storyboard: its total price and its "
        "generations in order, each with its label and whether you kept it.",
        tags=["creative"],
        responses={200: BatchDetailSerializer},
    )
    def get(self, request, pk):
        batch = get_object_or_404(Batch.objects.filter(user=request.user), pk=pk)
        recipes = batch.recipes.select_related("generation").filter(
            generation__deleted_at__isnull=True
        )
        context = {"request": request, "output_urls": output_urls(request)}
        body = batch_document(batch, [r.generation for r in recipes], [], context)
        body.pop("refused")
        for item, recipe in zip(body["generations"], recipes, strict=True):
            item["label"], item["kept"] = recipe.label, recipe.kept
        return Response(body)


class Storyboards(ApiView):
    """Split a text into up to 5 scenes filled into a template; `draft: true` returns the
    scenes and the total price to edit, otherwise they are queued as one batch."""

    required_scopes = {"POST": Scope.GENERATIONS_WRITE}

    @extend_schema(
        operation_id="storyboards_create",
        summary="Make a storyboard from a text",
        description="Split a text into up to 5 scenes filled into a template. With "
        "`draft: true` answers 200 with the scenes and the total price to edit; otherwise "
        "queues them as one batch (201).",
        tags=["creative"],
        request={"application/json": StoryboardSerializer},
        responses={200: StoryboardDraftSerializer, 201: BatchCreatedSerializer},
    )
    def post(self, request):
        serializer = StoryboardSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            template = templating.template_get(
                user=request.user, slug=data.get("template") or "story-scene"
            )
            if data.get("scenes"):
                draft = storyboard.Draft(scenes=list(data["scenes"]), source="yours")
            else:
                draft = storyboard.storyboard_draft(data["text"])
            filled = storyboard.storyboard_fill(template, draft.scenes, data.get("slots"))
        except InputError as exc:
            raise refusal(exc) from None
        endpoint = data.get("endpoint") or template.endpoint_id
        try:
            suggestions = templating.template_suggestions(template, endpoint)
        except InputError as exc:
            raise refusal(exc) from None
        preset = suggestions.pop("preset", "static")
        inputs = {k: v for k, v in suggestions.items()}
        for name in ("aspect_ratio", "resolution", "duration"):
            if name in data:
                inputs[name] = data[name]
        choice = creative_constraints.resolve(request.user, on=data.get("constraints"))
        variants = [
            Variant(inputs={**inputs, "prompt": f.prompt}, label=scene, slots=f.slots)
            for f, scene in zip(filled, draft.scenes, strict=True)
        ]
        if data["draft"]:
            try:
                price = batch_estimate(
                    user=request.user,
                    endpoint_id=endpoint,
                    inputs=variants[0].inputs,
                    count=len(variants),
                    preset=preset,
                )
            except InputError as exc:
                raise refusal(exc) from None
            return Response(
                {
                    "source": draft.source,
                    "note": draft.note,
                    "template": template.slug,
                    "scenes": [{"text": v.label, "prompt": v.inputs["prompt"]} for v in variants],
                    "price": price,
                }
            )
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        try:
            result = batch_create(
                user=request.user,
                kind=Batch.Kind.STORYBOARD,
                endpoint_id=endpoint,
                variants=variants,
                preset=preset,
                template=template,
                title=data.get("title") or draft.scenes[0][:200],
                source_text=data["text"],
                constraints=choice.terms if choice.on else "",
                api_key=api_key,
                suspension_checked=api_key is not None,
                request=request,
            )
        except BatchRefused as exc:
            raise batch_problem(exc) from None
        except InputError as exc:
            raise refusal(exc) from None
        context = {"request": request, "output_urls": output_urls(request)}
        body = batch_document(result.batch, result.generations, result.refused, context)
        return Response(
            body,
            status=status.HTTP_201_CREATED,
            headers={"Location": request.build_absolute_uri(f"/api/v1/batches/{result.batch.pk}")},
        )
