"""The generation as the API shows it: one rendering for API answers (restapi's
GenerationSerializer) and webhook payloads (api.webhooks), so a webhook's `data` is exactly
what GET /generations/{id} returns.

Built directly rather than field by field: DRF rebuilt a ModelSerializer's fields for every
instance, which cost more than the rest of a detail request (tests/api/test_serializers.py
proves the two renderings equal).
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from rest_framework import serializers

from generation.delivery import signed_url
from generation.models import Generation
from moderation.services import output_is_taken_down

# Renders dates exactly as a ModelSerializer field would (ISO 8601, current time zone).
_DATETIME = serializers.DateTimeField()
TIMINGS = (
    "queued_at",
    "submitting_at",
    "in_queue_at",
    "in_progress_at",
    "finalizing_at",
    "finished_at",
)
Links = Callable[[Generation], dict]


def output_links(generation: Generation, *, absolute: Callable[[str], str]) -> dict:
    """Fresh signed links to the video and poster, with when they expire."""
    video = signed_url(
        generation.output.name,
        content_type="video/mp4",
        filename=f"promptreel-{generation.pk}.mp4",
        generation_id=generation.pk,
    )
    poster = signed_url(
        generation.poster.name, content_type="image/jpeg", generation_id=generation.pk
    )
    return {
        "video_url": absolute(video),
        "poster_url": absolute(poster),
        "expires_in": settings.SIGNED_URL_TTL,
        # Whole seconds, from the clock that signs the links (django.core.signing).
        "expires_at": _DATETIME.to_representation(
            datetime.fromtimestamp(int(time.time()) + settings.SIGNED_URL_TTL, UTC)
        ),
    }


def site_absolute(path: str) -> str:
    """An absolute link without a request (webhooks): PUBLIC_BASE_URL, or the dev server."""
    return (settings.PUBLIC_BASE_URL or "http://127.0.0.1:8000") + path


def taken_down(generation: Generation) -> bool:
    """Whether moderators took the output down: from the row's take-down when it was loaded
    with it (restapi.views.api_generations, api_generation), else asked."""
    if hasattr(generation, "is_taken_down"):
        return bool(generation.is_taken_down)
    if Generation.takedown.is_cached(generation):
        return getattr(generation, "takedown", None) is not None
    return output_is_taken_down(generation)


def timings(generation: Generation) -> dict:
    return {name: getattr(generation, name) for name in TIMINGS}


def error(generation: Generation) -> dict | None:
    if not generation.error_code or generation.state == "succeeded":
        return None
    return {"code": generation.error_code, "message": generation.error_message}


def output(generation: Generation, links: Links) -> dict | None:
    # Taken down by moderators: the owner keeps the record but no longer gets the file.
    if generation.state != "succeeded" or taken_down(generation):
        return None
    urls = links(generation)
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


def generation_document(generation: Generation, *, links: Links) -> dict:
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
        "aspect_ratio": str(generation.aspect_ratio) or None,
        "tier": str(generation.tier),
        "price_credits": int(generation.credit_cost),
        "queue_position": None if queue_position is None else int(queue_position),
        "attempts": int(generation.attempts),
        "created_at": _DATETIME.to_representation(generation.created_at),
        "timings": timings(generation),
        "error": error(generation),
        "output": output(generation, links),
    }
