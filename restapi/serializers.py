import threading

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from api import documents
from api.models import WebhookDelivery, WebhookEvent
from generation.models import Generation, State, Tier
from generation.render import MOTION_PRESETS
from workflows.batches import MAX_VARIATIONS, MIN_VARIATIONS

# Catalogue fields a create request may carry; the catalogue decides which an endpoint takes.
ENDPOINT_FIELDS = (
    "prompt",
    "negative_prompt",
    "aspect_ratio",
    "resolution",
    "duration",
    "pikaffect",
    "ingredients_mode",
    "modify_region",
    "transitions",
)


@extend_schema_field({"type": "array", "items": {"$ref": "#/components/schemas/Transition"}})
class TransitionsField(serializers.ListField):
    """Checked by the catalogue against the keyframe count (generation/catalogue.py)."""


# Each thread's fields of the create serializers, by class (see GenerationCreateSerializer.fields).
_shared_fields = threading.local()


class CreativeFields(serializers.Serializer):
    """The creative tools' fields of a create or an estimate (mixed into both)."""

    template = serializers.CharField(
        required=False, max_length=60, help_text="A template slug from GET /templates"
    )
    slots = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=200),
        required=False,
        help_text="The template's slot values by name; a slot without a default is required",
    )
    constraints = serializers.BooleanField(
        required=False,
        help_text="Add the built-in constraints (no text, no watermark, no logo, no distortion, "
        "stable frames) to the negative prompt; default: your account's setting (on)",
    )
    constraints_text = serializers.CharField(
        required=False, max_length=300, help_text="Your own constraint terms, comma-separated"
    )
    variations = serializers.IntegerField(
        required=False,
        min_value=MIN_VARIATIONS,
        max_value=MAX_VARIATIONS,
        help_text="Render 2 to 4 variations (different seeds, or vary_slot) as one batch",
    )
    vary_slot = serializers.CharField(
        required=False, max_length=40, help_text="A template slot to vary across variations"
    )
    vary_values = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        min_length=MIN_VARIATIONS,
        max_length=MAX_VARIATIONS,
        help_text="One value of vary_slot per variation",
    )
    force = serializers.BooleanField(
        default=False,
        help_text="Render even when you made this exact video before (else 409 duplicate)",
    )
    partial = serializers.BooleanField(
        default=False,
        help_text="Variations: start the ones your plan and balance allow, list the others",
    )


class GenerationCreateSerializer(CreativeFields):
    endpoint = serializers.CharField(
        required=False, help_text="Catalogue endpoint id; see GET /models"
    )
    prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="What to film. Required by every endpoint but Pikaffects, Pikadditions and "
        "Pikaswaps (GET /models: `fields.prompt.required`)",
    )
    negative_prompt = serializers.CharField(
        required=False, allow_blank=True, help_text="What to keep out of the video"
    )
    aspect_ratio = serializers.CharField(
        required=False, help_text="e.g. 16:9; the endpoint's choices are in GET /models"
    )
    resolution = serializers.CharField(
        required=False, help_text="480p, 720p or 1080p, as the endpoint and plan allow"
    )
    duration = serializers.IntegerField(
        required=False, min_value=1, max_value=60, help_text="seconds, as the endpoint allows"
    )
    pikaffect = serializers.CharField(required=False, help_text="Pikaffects: the effect's name")
    ingredients_mode = serializers.CharField(
        required=False, help_text="Pikascenes: precise or creative"
    )
    modify_region = serializers.CharField(
        required=False, help_text="Pikaswaps: what in the video to replace"
    )
    transitions = TransitionsField(
        child=serializers.DictField(),
        required=False,
        help_text="Pikaframes: one {duration, prompt} object between each pair of keyframes",
    )
    preset = serializers.ChoiceField(
        choices=list(MOTION_PRESETS),
        default="static",
        help_text="camera motion of the offline renderer",
    )
    seed = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=2**32 - 1,
        help_text="the same seed and inputs make the same video; random when absent",
    )
    image_url = serializers.URLField(required=False, help_text="https URL of an input image")
    image_urls = serializers.ListField(child=serializers.URLField(), required=False, max_length=6)
    image = serializers.FileField(required=False, help_text="multipart upload of an input image")
    images = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=6,
        help_text="multipart uploads of several input images, in order (Pikascenes, Pikaframes)",
    )
    video_url = serializers.URLField(
        required=False, help_text="https URL of an input video (Pikadditions, Pikaswaps)"
    )
    video = serializers.FileField(required=False, help_text="multipart upload of an input video")
    webhook_url = serializers.URLField(required=False, help_text="public https URL told of changes")
    webhook_events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.values),
        required=False,
        help_text="events to send (default: all)",
    )

    @property
    def fields(self):
        """The declared fields, built once per thread and class instead of once per request.

        DRF deep-copies every declared field for each serializer, which cost 0.2 ms of a
        create, more than validating with them. These fields keep nothing between validations
        and read no context, so one set, bound to a serializer that only holds them, serves
        every instance of the class in the thread. Never modify it.
        """
        by_class = _shared_fields.__dict__
        fields = by_class.get(type(self))
        if fields is None:
            holder = type(self)()
            fields = by_class[type(self)] = super(GenerationCreateSerializer, holder).fields
        return fields

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {
                    name: "Unknown field; see the API reference for what create accepts."
                    for name in sorted(unknown)
                }
            )
        # Several files under one multipart name: the field keeps only the last, so take them
        # all, in the order they came (as `images`).
        getlist = getattr(self.initial_data, "getlist", None)
        if getlist is not None and len(getlist("image")) > 1:
            attrs["images"] = self.fields["images"].run_validation(getlist("image"))
            attrs.pop("image")
        given = [name for name in ("image_url", "image_urls", "image", "images") if attrs.get(name)]
        if len(given) > 1:
            raise serializers.ValidationError(
                {given[1]: f"Give images one way only, not with {given[0]}."}
            )
        if attrs.get("video") and attrs.get("video_url"):
            raise serializers.ValidationError(
                {"video_url": "Give a video file or a video link, not both."}
            )
        return attrs

    def endpoint_inputs(self) -> dict:
        return {
            name: self.validated_data[name]
            for name in ENDPOINT_FIELDS
            if name in self.validated_data
        }


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "message_id",
            "event",
            "url",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
            "next_attempt_at",
        ]


class EstimateSerializer(GenerationCreateSerializer):
    image_count = serializers.IntegerField(required=False, min_value=0, max_value=6, default=0)


# --- Components of the documented responses --------------------------------------------------
# The views build these documents directly (faster than DRF's field-by-field rendering); the
# serializers below describe them for the OpenAPI schema (restapi/schema.py), and
# tests/api/test_openapi_client.py proves that a client generated from it reads them.


class OutputSerializer(serializers.Serializer):
    video_url = serializers.URLField(help_text="signed MP4 link; fetch the generation again after")
    poster_url = serializers.URLField(help_text="signed JPEG link")
    expires_in = serializers.IntegerField(
        min_value=1, help_text="seconds the URLs stay valid from this answer"
    )
    expires_at = serializers.DateTimeField(help_text="when the URLs stop working")
    width = serializers.IntegerField(min_value=1)
    height = serializers.IntegerField(min_value=1)
    duration = serializers.FloatField(min_value=0, help_text="seconds")
    bytes = serializers.IntegerField(min_value=0)
    codec = serializers.CharField()


class TimingsSerializer(serializers.Serializer):
    queued_at = serializers.DateTimeField(allow_null=True)
    submitting_at = serializers.DateTimeField(allow_null=True)
    in_queue_at = serializers.DateTimeField(allow_null=True)
    in_progress_at = serializers.DateTimeField(allow_null=True)
    finalizing_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class GenerationErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable machine code, e.g. provider_error")
    message = serializers.CharField()


class GenerationSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(choices=State.choices)
    endpoint = serializers.CharField(source="endpoint_id")
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1)
    aspect_ratio = serializers.SerializerMethodField()
    tier = serializers.ChoiceField(choices=Tier.choices)
    price_credits = serializers.IntegerField(source="credit_cost", min_value=0)
    queue_position = serializers.IntegerField(
        allow_null=True, min_value=0, help_text="place in the provider's queue, when known"
    )
    attempts = serializers.IntegerField(min_value=0, help_text="sends to the provider so far")
    timings = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    output = serializers.SerializerMethodField()
    # The model columns the rendering reads (api_views.api_generations loads only these).
    columns_read = (
        "id",
        "user",
        "state",
        "endpoint_id",
        "prompt",
        "preset",
        "seed",
        "resolution",
        "duration",
        "aspect_ratio",
        "tier",
        "credit_cost",
        "queue_position",
        "attempts",
        "created_at",
        *documents.TIMINGS,
        "error_code",
        "error_message",
        "output",
        "poster",
        "video_width",
        "video_height",
        "video_duration",
        "video_bytes",
        "video_codec",
    )

    class Meta:
        model = Generation
        fields = [
            "id",
            "state",
            "endpoint",
            "prompt",
            "preset",
            "seed",
            "resolution",
            "duration",
            "aspect_ratio",
            "tier",
            "price_credits",
            "queue_position",
            "attempts",
            "created_at",
            "timings",
            "error",
            "output",
        ]
        read_only_fields = fields  # a response document: every field is always present

    def to_representation(self, generation) -> dict:
        # The same document as ModelSerializer's field-by-field rendering, built directly.
        return documents.generation_document(generation, links=self.context["output_urls"])

    @extend_schema_field(
        {"type": "string", "nullable": True, "description": "null when the endpoint has none"}
    )
    def get_aspect_ratio(self, generation) -> str | None:
        return str(generation.aspect_ratio) or None

    @extend_schema_field(TimingsSerializer)
    def get_timings(self, generation) -> dict:
        return documents.timings(generation)

    @extend_schema_field(GenerationErrorSerializer(allow_null=True))
    def get_error(self, generation) -> dict | None:
        return documents.error(generation)

    @extend_schema_field(OutputSerializer(allow_null=True))
    def get_output(self, generation) -> dict | None:
        return documents.output(generation, self.context["output_urls"])


class GenerationCancelSerializer(GenerationSerializer):
    cancel = serializers.ChoiceField(
        choices=["canceled", "requested", "finishing"],
        read_only=True,
        help_text="canceled: stopped, credits back; requested: the provider was asked to stop "
        "a running job and has not confirmed (it ends canceled with credits back, or succeeded "
        "and charged; poll or wait for the webhook); finishing: too late, the video is being "
        "saved",
    )

    class Meta(GenerationSerializer.Meta):
        fields = [*GenerationSerializer.Meta.fields, "cancel"]
        read_only_fields = fields


# Request bodies by media type: a JSON body brings images and videos by https link, a
# multipart body uploads them. One schema for both made generated clients send multipart
# labelled as a form (issue 19). These subclasses only drop fields for the schema; the view
# validates with GenerationCreateSerializer (fields added there appear in both).
@extend_schema_serializer(component_name="GenerationCreate")
class GenerationCreateJsonSerializer(GenerationCreateSerializer):
    image = None
    images = None
    video = None


@extend_schema_serializer(component_name="GenerationUpload")
class GenerationCreateUploadSerializer(GenerationCreateSerializer):
    transitions = None  # an array of objects has no multipart form; send Pikaframes as JSON
    image_urls = None
    image = serializers.FileField(required=False, help_text="an input image (PNG, JPEG, WebP)")
    images = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=6,
        help_text="several input images, in order (Pikascenes, Pikaframes)",
    )


@extend_schema_serializer(component_name="EstimateCreate")
class EstimateJsonSerializer(EstimateSerializer):
    image = None
    images = None
    video = None


@extend_schema_serializer(component_name="EstimateUpload")
class EstimateUploadSerializer(EstimateSerializer):
    transitions = None
    image_urls = None


class AccountPlanSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    max_resolution = serializers.CharField()
    max_duration = serializers.IntegerField(min_value=1)
    max_in_flight = serializers.IntegerField(min_value=0)
    daily_free_previews = serializers.IntegerField(min_value=0)


class AccountBalanceSerializer(serializers.Serializer):
    monthly = serializers.IntegerField(min_value=0)
    purchased = serializers.IntegerField(min_value=0)
    monthly_expires_at = serializers.DateTimeField(allow_null=True)


class AccountUsageSerializer(serializers.Serializer):
    generations = serializers.IntegerField(min_value=0)
    free_previews_left = serializers.IntegerField(min_value=0)
    in_flight = serializers.IntegerField(min_value=0)


class AccountKeySerializer(serializers.Serializer):
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    monthly_credit_cap = serializers.IntegerField(allow_null=True, min_value=1)
    spent_this_month = serializers.IntegerField(min_value=0)


@extend_schema_serializer(component_name="Account")
class AccountSerializer(serializers.Serializer):
    email = serializers.EmailField()
    plan = AccountPlanSerializer()
    balance = AccountBalanceSerializer()
    usage_today = AccountUsageSerializer()
    rate_limit_per_minute = serializers.IntegerField(min_value=1)
    key = AccountKeySerializer(required=False, help_text="present when called with an API key")


class ModelImagesSerializer(serializers.Serializer):
    min = serializers.IntegerField(min_value=0)
    max = serializers.IntegerField(min_value=0)


class ModelPriceSerializer(serializers.Serializer):
    resolution = serializers.CharField()
    duration = serializers.IntegerField(min_value=1)
    credits = serializers.IntegerField(min_value=0)
    confirmed = serializers.BooleanField(help_text="false: fal's price for it is our estimate")


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "integer"}]})
class _TextOrInteger(serializers.JSONField):
    pass


class ModelFieldSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text", "choice", "int_choice", "transitions"])
    required = serializers.BooleanField(required=False)
    default = _TextOrInteger(required=False)
    choices = serializers.ListField(child=_TextOrInteger(), required=False)
    min_duration = serializers.IntegerField(required=False)
    max_duration = serializers.IntegerField(required=False)
    default_duration = serializers.IntegerField(required=False)
    max_total = serializers.IntegerField(required=False)


class CatalogueModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    kind = serializers.CharField()
    images = ModelImagesSerializer()
    video = serializers.BooleanField(help_text="takes an input video")
    fields = serializers.DictField(child=ModelFieldSerializer(), help_text="create fields it takes")
    prices = ModelPriceSerializer(many=True)
    price_rule = serializers.CharField()
    price_source = serializers.CharField()


@extend_schema_serializer(component_name="ModelList")
class ModelListSerializer(serializers.Serializer):
    models = CatalogueModelSerializer(many=True)


@extend_schema_field({"oneOf": [{"$ref": "#/components/schemas/Problem"}, {"type": "null"}]})
class _ProblemOrNull(serializers.JSONField):
    pass


@extend_schema_serializer(component_name="Estimate")
class EstimateResultSerializer(serializers.Serializer):
    endpoint = serializers.CharField()
    resolution = serializers.CharField()
    duration = serializers.IntegerField(min_value=1)
    price_confirmed = serializers.BooleanField()
    credits = serializers.IntegerField(min_value=0, help_text="what create would hold")
    list_credits = serializers.IntegerField(min_value=0)
    free_preview = serializers.BooleanField()
    balance = serializers.IntegerField(min_value=0)
    enough = serializers.BooleanField()
    in_flight = serializers.IntegerField(min_value=0)
    max_in_flight = serializers.IntegerField(min_value=0)
    plan = serializers.CharField()
    refusal = _ProblemOrNull(
        help_text="the problem create would answer now because of the account's state "
        "(limits, credits, the key's cap), or null",
    )


@extend_schema_serializer(component_name="WebhookEvent")
class WebhookEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=[*WebhookEvent.values, "webhook.test"])
    timestamp = serializers.DateTimeField()
    data = GenerationSerializer(help_text="the generation as GET /generations/{id} returns it")


class WebhookTestSerializer(serializers.Serializer):
    url = serializers.URLField(
        max_length=2000,
        help_text="where to POST a signed webhook.test event now (public https; loopback too "
        "in development with WEBHOOK_ALLOW_LOOPBACK)",
    )


@extend_schema_serializer(component_name="WebhookTestResult")
class WebhookTestResultSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    delivered = serializers.BooleanField(help_text="the receiver answered 2xx")
    status_code = serializers.IntegerField(allow_null=True, min_value=100, max_value=599)
    error = serializers.CharField(allow_blank=True)
