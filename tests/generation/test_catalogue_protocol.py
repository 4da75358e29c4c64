"""The catalogue against shared/fal-protocol.md §4, row by row, and retiring an endpoint.

PROTOCOL is that table transcribed: required inputs, enums, defaults and fal's published price.
When fal changes, change the protocol file, this table and catalogue.json together.
"""

import json
from decimal import Decimal

import pytest
from django.urls import reverse

from generation import catalogue
from generation.models import Generation, State
from tests.api.conftest import ALL_SCOPES, client_with
from tests.factories import GenerationFactory
from tests.support.media import png_bytes, upload

ASPECTS = ["16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3"]
UGLY = "ugly, bad, terrible"
EFFECTS = "Cake-ify Crumble Crush Decapitate Deflate Dissolve Explode Eye-pop Inflate Levitate "
EFFECTS += "Melt Peel Poke Squish Ta-da Tear"

# endpoint id -> (required inputs, {field: (choices or None, default)}, published prices)
# Published prices: {(resolution, seconds): usd} as fal states them ("*" = any); None where
# the protocol says UNCONFIRMED or not published.
PROTOCOL = {
    "fal-ai/pika/v2.2/text-to-video": (
        {"prompt"},
        {
            "negative_prompt": (None, UGLY),
            "aspect_ratio": (ASPECTS, "16:9"),
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5, 10], 5),
        },
        {("720p", 5): "0.20", ("1080p", 5): "0.45"},
    ),
    "fal-ai/pika/v2.2/image-to-video": (
        {"image_url", "prompt"},
        {
            "negative_prompt": (None, ""),
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5, 10], 5),
        },
        {("720p", 5): "0.20", ("1080p", 5): "0.45"},
    ),
    "fal-ai/pika/v2.2/pikascenes": (
        {"image_urls", "prompt"},
        {
            "ingredients_mode": (["precise", "creative"], "precise"),
            "aspect_ratio": (ASPECTS, "16:9"),
            "resolution": (["720p", "1080p"], "1080p"),
            "duration": ([5, 10], 5),
            "negative_prompt": (None, UGLY),
        },
        None,  # ~$0.20 / 5 s 720p from a third party only
    ),
    "fal-ai/pika/v2.2/pikaframes": (
        {"image_urls"},
        {
            "prompt": (None, None),
            "transitions": (None, None),
            "resolution": (["720p", "1080p"], "720p"),
            "negative_prompt": (None, ""),
        },
        # per second, 5 s minimum: 1 s costs 5 s, 7 s costs 7, 25 s costs 25
        {
            ("720p", 1): "0.20",
            ("720p", 7): "0.28",
            ("720p", 25): "1.00",
            ("1080p", 1): "0.30",
            ("1080p", 7): "0.42",
            ("1080p", 25): "1.50",
        },
    ),
    "fal-ai/pika/v2.1/text-to-video": (
        {"prompt"},
        {
            "aspect_ratio": (ASPECTS, "16:9"),
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5], 5),
            "negative_prompt": (None, ""),
        },
        None,
    ),
    "fal-ai/pika/v2.1/image-to-video": (
        {"image_url", "prompt"},
        {
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5], 5),
            "negative_prompt": (None, ""),
        },
        {("*", 5): "0.40"},
    ),
    "fal-ai/pika/v2/turbo/text-to-video": (
        {"prompt"},
        {
            "aspect_ratio": (ASPECTS, "16:9"),
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5], 5),
            "negative_prompt": (None, ""),
        },
        {("*", 5): "0.20"},
    ),
    "fal-ai/pika/v2/turbo/image-to-video": (
        {"image_url", "prompt"},
        {
            "resolution": (["720p", "1080p"], "720p"),
            "duration": ([5], 5),
            "negative_prompt": (None, ""),
        },
        {("*", 5): "0.20"},
    ),
    "fal-ai/pika/v1.5/pikaffects": (
        {"image_url", "pikaffect"},
        {
            "pikaffect": (EFFECTS.split(), None),
            "prompt": (None, None),
            "negative_prompt": (None, ""),
        },
        {("*", 5): "0.465"},
    ),
    "fal-ai/pika/v2/pikadditions": (
        {"video_url", "image_url"},
        {"prompt": (None, None), "negative_prompt": (None, "")},
        None,  # ~$0.465 from a third-party snapshot
    ),
    "fal-ai/pika/v2/pikaswaps": (
        {"video_url"},
        {
            "image_url": (None, None),
            "modify_region": (None, None),
            "prompt": (None, None),
            "negative_prompt": (None, ""),
        },
        None,
    ),
    "fal-ai/pika/v2.5/text-to-video": (
        {"prompt"},
        {
            "resolution": (["480p", "720p", "1080p"], "720p"),
            "duration": ([5, 10], 5),
            "negative_prompt": (None, UGLY),
        },
        None,
    ),
}
MEDIA_FIELDS = {"image_url", "image_urls", "video_url"}


def _required_inputs(endpoint: catalogue.Endpoint) -> set[str]:
    required = {name for name, spec in endpoint.fields.items() if spec.get("required")}
    if endpoint.media_field and endpoint.media_min > 0:
        required.add(endpoint.media_field)
    if endpoint.video_field:
        required.add(endpoint.video_field)
    return required


def test_the_catalogue_lists_exactly_the_protocols_endpoints():
    assert {e.id for e in catalogue.endpoints(include_retired=True)} == set(PROTOCOL)


@pytest.mark.parametrize("endpoint_id", list(PROTOCOL))
def test_endpoint_matches_the_protocol_row(endpoint_id):
    required, fields, published = PROTOCOL[endpoint_id]
    endpoint = catalogue.get_endpoint(endpoint_id)
    assert _required_inputs(endpoint) == required
    media = {endpoint.media_field, endpoint.video_field} - {None}
    # Every input the protocol names is taken: as a field, or as a file we host.
    assert set(fields) - MEDIA_FIELDS <= set(endpoint.fields)
    assert set(endpoint.fields) | media == (set(fields) | required) - {"seed"}
    for name, (choices, default) in fields.items():
        if name in MEDIA_FIELDS:
            assert name in media
            continue
        spec = endpoint.fields[name]
        if choices is not None:
            assert spec["choices"] == choices, name
        assert spec.get("default") == default, name
    if published is None:
        assert not endpoint.price.confirmed, "a price the protocol calls unconfirmed"
    else:
        for (resolution, seconds), usd in published.items():
            resolutions = endpoint.choices("resolution") if resolution == "*" else [resolution]
            for each in resolutions:
                assert catalogue.fal_price_usd(endpoint, each, seconds) == (Decimal(usd), True)
    assert endpoint.price.source
    assert endpoint.retired is False


@pytest.fixture
def alice_api(user):
    from api.services import apikey_create

    return client_with(apikey_create(user=user, name="script", scopes=ALL_SCOPES)[1])


@pytest.fixture
def retired_pikaffects(tmp_path, monkeypatch):
    """The catalogue with Pikaffects retired, as a data change (catalogue.json) would do it."""
    data = json.loads(catalogue.CATALOGUE_FILE.read_text())
    for item in data["endpoints"]:
        if item["id"] == "fal-ai/pika/v1.5/pikaffects":
            item["retired"] = True
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(catalogue, "CATALOGUE_FILE", path)
    catalogue._load.cache_clear()
    yield "fal-ai/pika/v1.5/pikaffects"
    catalogue._load.cache_clear()


def test_a_retired_endpoint_is_refused_by_the_api_and_left_out_of_the_models(
    retired_pikaffects, alice_api
):
    response = alice_api.post(
        "/api/v1/generations",
        {
            "endpoint": retired_pikaffects,
            "pikaffect": "Melt",
            "image": upload("a.png", png_bytes()),
        },
        format="multipart",
    )
    assert response.status_code == 400, response.json()
    assert "retired" in response.json()["errors"]["endpoint"]
    assert not Generation.objects.exists()
    listed = {row["id"] for row in alice_api.get("/api/v1/models").json()["models"]}
    assert retired_pikaffects not in listed and "fal-ai/pika/v2.2/text-to-video" in listed


def test_a_retired_endpoint_is_not_offered_by_the_site_form(retired_pikaffects, alice_client):
    page = alice_client.get(reverse("generate")).content.decode()
    assert retired_pikaffects not in page
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": retired_pikaffects,
            "pikaffect": "Melt",
            "image": upload("a.png", png_bytes()),
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "duration": "5",
            "preset": "static",
        },
    )
    assert response.status_code == 400
    assert "endpoint" in response.context["form"].errors
    assert not Generation.objects.exists()


def test_clips_of_a_retired_endpoint_are_still_shown_and_keep_their_price(
    retired_pikaffects, user, alice_client, alice_api
):
    clip = GenerationFactory(
        user=user,
        endpoint_id=retired_pikaffects,
        prompt="the melting clock",
        state=State.FAILED,
        credit_cost=93,
        fal_price_usd="0.465",
    )
    assert "the melting clock" in alice_client.get(reverse("gallery")).content.decode()
    detail = alice_client.get(reverse("generation_detail", args=[clip.pk]))
    # The page names the model in words (Effects · Pika 1.5), never by its fal id.
    assert detail.status_code == 200 and "Pika 1.5" in detail.content.decode()
    body = alice_api.get(f"/api/v1/generations/{clip.pk}").json()
    assert (body["endpoint"], body["price_credits"]) == (retired_pikaffects, 93)


def test_an_unpriced_endpoint_is_refused_with_a_clear_error_until_overridden(
    alice_api, alice_client, settings
):
    v25 = "fal-ai/pika/v2.5/text-to-video"
    response = alice_api.post(
        "/api/v1/generations", {"endpoint": v25, "prompt": "x"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert "FAL_PRICE_OVERRIDES" in response.json()["errors"]["endpoint"]
    assert f'value="{v25}"' not in alice_client.get(reverse("generate")).content.decode()
    settings.FAL_PRICE_OVERRIDES = json.dumps({v25: {"*": {"5": "0.30", "10": "0.60"}}})
    catalogue._price_overrides.cache_clear()
    try:
        models = {row["id"]: row for row in alice_api.get("/api/v1/models").json()["models"]}
        assert models[v25]["prices"][0]["confirmed"] is True
        assert f'value="{v25}"' in alice_client.get(reverse("generate")).content.decode()
    finally:
        catalogue._price_overrides.cache_clear()


def test_the_jwks_default_is_fals_current_address():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "FAL_WEBHOOK_JWKS_URL"}
    out = subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.FAL_WEBHOOK_JWKS_URL)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "https://rest.fal.ai/.well-known/jwks.json"
