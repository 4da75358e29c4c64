import threading

from rest_framework import serializers

from api.models import WebhookDelivery, WebhookEvent
from generation.models import Generation
from generation.render import MOTION_PRESETS
from moderation.services import output_is_taken_down

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


# Each thread's fields of the create serializers, by class (see GenerationCreateSerializer.fields).
_shared_fields = threading.local()


class GenerationCreateSerializer(serializers.Serializer):
    endpoint = serializers.CharField(
        required=False, help_text="Catalogue endpoint id; see GET /models"
    )
    prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    negative_prompt = serializers.CharField(required=False, allow_blank=True)
    aspect_ratio = serializers.CharField(required=False)
    resolution = serializers.CharField(required=False)
    duration = serializers.IntegerField(required=False)
    pikaffect = serializers.CharField(required=False)
    ingredients_mode = serializers.CharField(required=False)
    modify_region = serializers.CharField(
        required=False, help_text="Pikaswaps: what in the video to replace"
    )
    transitions = serializers.ListField(child=serializers.DictField(), required=False)
    preset = serializers.ChoiceField(choices=list(MOTION_PRESETS), default="static")
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1)
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


class OutputSerializer(serializers.Serializer):
    video_url = serializers.CharField()
    poster_url = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="seconds the URLs stay valid")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    duration = serializers.FloatField()
    bytes = serializers.IntegerField()
    codec = serializers.CharField()


def _taken_down(generation) -> bool:
    """Whether moderators took the output down: from the row's take-down when it was loaded
    with it (api_generations, api_generation), else asked."""
    if hasattr(generation, "is_taken_down"):
        return bool(generation.is_taken_down)
    if Generation.takedown.is_cached(generation):
        return getattr(generation, "takedown", None) is not None
    return output_is_taken_down(generation)


# Renders created_at exactly as the ModelSerializer field would (ISO 8601, current time zone).
_DATETIME = serializers.DateTimeField()


class GenerationSerializer(serializers.ModelSerializer):
    endpoint = serializers.CharField(source="endpoint_id")
    price_credits = serializers.IntegerField(source="credit_cost")
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
        "queued_at",
        "submitting_at",
        "in_queue_at",
        "in_progress_at",
        "finalizing_at",
        "finished_at",
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

    def to_representation(self, generation) -> dict:
        """The same document as ModelSerializer's field-by-field rendering (a test compares
        the two), built directly: DRF rebuilds a ModelSerializer's fields from the model for
        every instance, which cost more than the rest of a detail request's view."""
        queue_position = generation.queue_position
        return {
            "id": str(generation.id),
            "state": str(generation.state),
            "endpoint": str(generation.endpoint_id),
            "prompt": str(generation.prompt),
            "preset": str(generation.preset),
            "seed": int(generation.seed),
            "resolution": str(generation.resolution),
            "duration": int(generation.duration),
            "aspect_ratio": str(generation.aspect_ratio),
            "tier": str(generation.tier),
            "price_credits": int(generation.credit_cost),
            "queue_position": None if queue_position is None else int(queue_position),
            "attempts": int(generation.attempts),
            "created_at": _DATETIME.to_representation(generation.created_at),
            "timings": self.get_timings(generation),
            "error": self.get_error(generation),
            "output": self.get_output(generation),
        }

    def get_timings(self, generation) -> dict:
        names = (
            "queued_at",
            "submitting_at",
            "in_queue_at",
            "in_progress_at",
            "finalizing_at",
            "finished_at",
        )
        return {name: getattr(generation, name) for name in names}

    def get_error(self, generation) -> dict | None:
        if not generation.error_code or generation.state == "succeeded":
            return None
        return {"code": generation.error_code, "message": generation.error_message}

    def get_output(self, generation) -> dict | None:
        # Taken down by moderators: the owner keeps the record but no longer gets the file.
        if generation.state != "succeeded" or _taken_down(generation):
            return None
        urls = self.context["output_urls"](generation)
        if not urls:
            return None
        return {
            **urls,
            "width": generation.video_width,
            "height": generation.video_height,
            "duration": generation.video_duration,
            "bytes": generation.video_bytes,
            "codec": generation.video_codec,
        }
