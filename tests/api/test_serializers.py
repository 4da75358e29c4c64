"""The API's hand-built generation document must equal DRF's field-by-field rendering, and the
create serializers' shared fields must validate as DRF's per-instance ones."""

import json
import threading
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from generation.models import State, Tier
from moderation.models import TakeDown
from restapi.serializers import EstimateSerializer, GenerationCreateSerializer, GenerationSerializer
from restapi.views import api_generations, output_urls
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db


def _rows(user):
    now = timezone.now()
    done = {
        "output": "outputs/a.mp4",
        "poster": "posters/a.jpg",
        "video_width": 1280,
        "video_height": 720,
        "video_duration": 5.0,
        "video_bytes": 1000,
        "video_codec": "h264",
        "finished_at": now,
    }
    GenerationFactory(user=user, state=State.QUEUED, queue_position=3, seed=2**32 - 1)
    GenerationFactory(user=user, state=State.HELD, queued_at=None, prompt="", aspect_ratio="")
    GenerationFactory(
        user=user,
        state=State.FAILED,
        error_code="provider_error",
        error_message="It broke.",
        attempts=4,
        finished_at=now,
        submitting_at=now - timedelta(seconds=3),
    )
    GenerationFactory(user=user, state=State.SUCCEEDED, tier=Tier.HD, resolution="1080p", **done)
    taken = GenerationFactory(user=user, state=State.SUCCEEDED, **done)
    TakeDown.objects.create(generation=taken, category="spam", reason="r")
    # As generation_create returns it: enum members and an unsaved-looking instance.
    fresh = GenerationFactory(user=user, state=State.QUEUED, tier=Tier.PREVIEW)
    fresh.state, fresh.tier = State.QUEUED, Tier.PREVIEW
    return [*api_generations(user), fresh]


@pytest.fixture
def still_clock(monkeypatch):
    # Signed URLs carry a timestamp: the same second for both renderings.
    monkeypatch.setattr("django.core.signing.time.time", lambda: 1_800_000_000.0)


@pytest.fixture
def context():
    request = RequestFactory().get("/api/v1/generations")
    return {"request": request, "output_urls": output_urls(request)}


def _json(data):
    return json.loads(JSONRenderer().render(data))


def test_fast_rendering_equals_modelserializer(user, still_clock, context):
    rows = _rows(user)
    assert len(rows) == 7
    for generation in rows:
        serializer = GenerationSerializer(generation, context=context)
        fast = serializer.data
        generic = serializers.ModelSerializer.to_representation(serializer, generation)
        assert list(fast) == list(generic)
        assert dict(fast) == dict(generic), generation.state
        assert _json(fast) == _json(generic), generation.state


def test_list_rendering_equals_modelserializer(user, still_clock, context):
    rows = _rows(user)
    many = GenerationSerializer(rows, many=True, context=context).data
    generic = [
        serializers.ModelSerializer.to_representation(
            GenerationSerializer(row, context=context), row
        )
        for row in rows
    ]
    assert _json(many) == _json(generic)


def test_signed_links_are_the_reversed_view_urls():
    from django.core import signing
    from django.urls import reverse

    from generation.delivery import SALT, _signed_view_url, verify_token

    for name in ("outputs/a b/ü.mp4", "x" * 200, "outputs/1/2.mp4"):
        token = signing.dumps({"n": name, "t": "video/mp4", "f": "é.mp4", "d": True}, salt=SALT)
        assert _signed_view_url(token) == reverse("media_signed", args=[token])
        assert verify_token(token).name == name


# --- The create serializers' shared fields validate as DRF's per-instance copies do -----------


class _PerInstanceFields(GenerationCreateSerializer):
    fields = serializers.Serializer.fields  # DRF's own: a deep copy per instance


class _PerInstanceEstimateFields(EstimateSerializer):
    fields = serializers.Serializer.fields


CREATE_INPUTS = [
    {"prompt": "a red fox walking in fresh snow", "resolution": "720p", "duration": 5},
    {},
    {"prompt": None, "duration": "five", "seed": -1, "preset": "wobble"},
    {"prompt": ["a", "list"], "negative_prompt": 3, "aspect_ratio": "", "resolution": None},
    {"prompt": "x", "colour": "red", "Prompt": "y"},
    {"image_url": "not a url", "image_urls": ["https://e.test/a.png"] * 7},
    {"image_url": "https://e.test/a.png", "image_urls": ["https://e.test/b.png"]},
    {"transitions": [{"duration": 2}, "not an object"], "webhook_events": ["nope"]},
    {"transitions": "ab", "webhook_url": "https://hooks.e.test/x", "webhook_events": []},
    {"seed": 2**32, "duration": 10.0, "image_count": 9, "endpoint": "fal-ai/pika/v2.2/x"},
    {"seed": "12", "duration": "10", "image_count": "2", "preset": "orbit"},
]


@pytest.mark.parametrize("data", CREATE_INPUTS)
@pytest.mark.parametrize(
    ("shared", "per_instance"),
    [
        (GenerationCreateSerializer, _PerInstanceFields),
        (EstimateSerializer, _PerInstanceEstimateFields),
    ],
)
def test_create_serializers_validate_as_with_their_own_fields(shared, per_instance, data):
    # Validate something else first: nothing may carry over from an earlier validation.
    shared(data={"seed": "x", "prompt": "earlier"}).is_valid()
    results = []
    for serializer in (shared(data=data), per_instance(data=data)):
        valid = serializer.is_valid()
        results.append((valid, serializer.validated_data if valid else serializer.errors))
    assert results[0] == results[1]


def test_create_serializer_fields_are_per_thread_and_per_class():
    fields = GenerationCreateSerializer().fields
    assert GenerationCreateSerializer(data={}).fields is fields
    assert "image_count" in EstimateSerializer().fields and "image_count" not in fields
    elsewhere = []
    thread = threading.Thread(target=lambda: elsewhere.append(GenerationCreateSerializer().fields))
    thread.start()
    thread.join()
    assert elsewhere[0] is not fields
    assert list(elsewhere[0]) == list(fields)
