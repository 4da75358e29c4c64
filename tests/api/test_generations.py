import pytest

from generation.models import Generation, State
from tests.factories import GenerationFactory
from tests.support.media import png_bytes, upload

pytestmark = pytest.mark.django_db

URL = "/api/v1/generations"


def test_create_text_generation(alice_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(
            URL,
            {"prompt": "a fox", "resolution": "720p", "duration": 5, "preset": "orbit", "seed": 7},
            format="json",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["endpoint"] == "fal-ai/pika/v2.2/text-to-video"
    assert body["seed"] == 7 and body["preset"] == "orbit"
    assert response["Location"].endswith(f"/api/v1/generations/{body['id']}")
    assert Generation.objects.get().state == State.IN_QUEUE


def test_create_with_multipart_image(alice_api):
    response = alice_api.post(
        URL, {"prompt": "waves", "image": upload("a.png", png_bytes())}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["endpoint"] == "fal-ai/pika/v2.2/image-to-video"
    assert Generation.objects.get().inputs.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "resolution": "4k"}, "resolution"),
        ({"prompt": "x", "duration": "ten"}, "duration"),
        ({"prompt": "x", "endpoint": "nope"}, "endpoint"),
        ({"prompt": "x", "preset": "spin"}, "preset"),
        ({"prompt": "x", "seed": -1}, "seed"),
        ({"prompt": "x", "colour": "red"}, "colour"),
        ({"prompt": "x", "image_url": "http://example.com/a.png"}, "image_url"),
        ({"prompt": "x", "image_url": "https://127.0.0.1/a.png"}, "image_url"),
        ({"prompt": "x", "endpoint": "fal-ai/pika/v2.2/image-to-video"}, "image"),
        ({"prompt": ["a", "list"]}, "prompt"),
    ],
)
def test_bad_input_is_a_400_problem_naming_the_field(alice_api, payload, field):
    response = alice_api.post(URL, payload, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == "invalid_input"
    assert field in body["errors"], body
    assert not Generation.objects.exists()


def test_malformed_json_is_a_400_problem(alice_api):
    response = alice_api.generic("POST", URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


def test_get_own_generation_with_signed_output(alice_api, user):
    generation = GenerationFactory(
        user=user,
        succeeded=True,
    )
    response = alice_api.get(f"{URL}/{generation.pk}")
    assert response.status_code == 200
    output = response.json()["output"]
    assert output["video_url"].startswith("http://testserver/")
    assert output["expires_in"] > 0 and output["width"] == 1280


def test_other_users_generation_is_404(bob_api, user):
    generation = GenerationFactory(user=user)
    assert bob_api.get(f"{URL}/{generation.pk}").status_code == 404
    assert bob_api.post(f"{URL}/{generation.pk}/cancel").status_code == 404
    assert bob_api.get(URL).json()["results"] == []


def test_list_is_cursor_paginated_and_filtered(alice_api, user):
    for index in range(5):
        GenerationFactory(user=user, state=State.FAILED if index % 2 else State.QUEUED)
    first = alice_api.get(URL, {"limit": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = alice_api.get(first["next"]).json()
    assert {row["id"] for row in first["results"]}.isdisjoint(
        row["id"] for row in second["results"]
    )
    failed = alice_api.get(URL, {"state": "failed"}).json()["results"]
    assert len(failed) == 2 and all(row["state"] == "failed" for row in failed)
    assert alice_api.get(URL, {"state": "exploded"}).status_code == 400
    assert alice_api.get(URL, {"created_after": "yesterday"}).status_code == 400


def test_list_uses_a_constant_number_of_queries(alice_api, user, django_assert_max_num_queries):
    for _ in range(3):
        GenerationFactory(user=user)
    with django_assert_max_num_queries(12) as few:
        alice_api.get(URL)
    for _ in range(20):
        GenerationFactory(user=user)
    with django_assert_max_num_queries(len(few.captured_queries)):
        alice_api.get(URL)


def test_cancel_queued_generation(alice_api, user):
    generation = GenerationFactory(user=user)
    response = alice_api.post(f"{URL}/{generation.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["state"] == "canceled" and response.json()["cancel"] == "canceled"


def test_models_lists_the_catalogue_with_prices(alice_api):
    models = alice_api.get("/api/v1/models").json()["models"]
    t2v = next(m for m in models if m["id"] == "fal-ai/pika/v2.2/text-to-video")
    assert {"resolution": "720p", "duration": 5, "credits": 40, "confirmed": True} in t2v["prices"]


@pytest.fixture
def creator(user):
    from billing import services as billing

    account = billing.account_for(user)
    billing.plan_change(account=account, plan="creator", source="staff", reason="test")
    billing.credits_purchase(account=account, credits=1000, key="test:grant", reason="test")
    return user


def test_estimate_matches_what_create_holds(alice_api, creator):
    estimate = alice_api.post(
        "/api/v1/estimate", {"prompt": "x", "resolution": "1080p"}, format="json"
    )
    assert estimate.status_code == 200, estimate.json()
    created = alice_api.post(URL, {"prompt": "x", "resolution": "1080p"}, format="json")
    assert estimate.json()["credits"] == created.json()["price_credits"] == 90
    assert estimate.json()["enough"] is True


def test_plan_limit_is_a_problem_naming_the_plan(alice_api):
    response = alice_api.post(URL, {"prompt": "x", "resolution": "1080p"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "plan_limit" and body["allowed_by"]
    assert not Generation.objects.exists()


def test_insufficient_credits_is_402(alice_api, user):
    from billing import services as billing

    account = billing.account_for(user)
    billing.plan_change(account=account, plan="creator", source="staff", reason="test")
    response = alice_api.post(URL, {"prompt": "x", "resolution": "1080p"}, format="json")
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_credits"


def test_suspended_user_cannot_create_via_session(user):
    from rest_framework.test import APIClient

    from moderation.services import user_suspend

    user_suspend(user=user, actor=None, reason="test", automatic=True)
    client = APIClient()
    client.force_login(user)
    response = client.post(URL, {"prompt": "x"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "account_suspended"


def test_account_shows_plan_balance_usage_and_key(alice_api, creator, alice_key):
    body = alice_api.get("/api/v1/account").json()
    assert body["plan"]["code"] == "creator"
    assert body["balance"]["purchased"] == 1000
    assert body["usage_today"]["in_flight"] == 0
    assert body["key"]["prefix"] == alice_key[0].prefix


def test_blocked_prompt_is_created_blocked_with_the_policy(alice_api):
    response = alice_api.post(
        URL, {"prompt": "a graphic beheading with gore everywhere"}, format="json"
    )
    body = response.json()
    assert response.status_code == 201, body
    assert body["state"] == "blocked"
    assert body["error"]["code"] == "moderation_blocked"
    assert "graphic violence" in body["error"]["message"]


def test_session_auth_needs_csrf(user):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(URL).status_code == 200
    response = client.post(URL, {"prompt": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_taken_down_output_is_not_handed_out(alice_api, user):
    from moderation.models import TakeDown

    generation = GenerationFactory(
        user=user, state=State.SUCCEEDED, output="outputs/a.mp4", poster="posters/a.jpg"
    )
    TakeDown.objects.create(generation=generation, reason="policy")
    assert alice_api.get(f"{URL}/{generation.pk}").json()["output"] is None
    assert alice_api.get(URL).json()["results"][0]["output"] is None


def test_key_monthly_credit_cap_is_enforced_and_reported(creator):
    from api.services import apikey_create
    from tests.api.conftest import ALL_SCOPES, client_with

    _, raw = apikey_create(user=creator, name="capped", scopes=ALL_SCOPES, monthly_credit_cap=100)
    api = client_with(raw)
    first = api.post(URL, {"prompt": "x", "resolution": "1080p"}, format="json")
    assert first.status_code == 201 and first.json()["price_credits"] == 90
    second = api.post(URL, {"prompt": "y", "resolution": "1080p"}, format="json")
    assert second.status_code == 402
    assert second.json()["code"] == "key_spend_cap" and "100" in second.json()["detail"]
    assert api.get("/api/v1/account").json()["key"]["spent_this_month"] == 90
    Generation.objects.filter(pk=first.json()["id"]).update(state=State.FAILED)
    assert api.post(URL, {"prompt": "z", "resolution": "1080p"}, format="json").status_code == 201


FRAMES = (
    '{"endpoint": "fal-ai/pika/v2.2/pikaframes", '
    '"image_urls": ["https://a.example/1.png", "https://a.example/2.png"], '
    '"transitions": [{"duration": %s}]}'
)


@pytest.mark.parametrize("duration", ["1e999", "2.7", "true", "-3"])
def test_odd_numbers_are_refused_before_any_download(alice_api, duration, monkeypatch):
    from restapi import views

    monkeypatch.setattr(views, "_images", lambda data: pytest.fail("downloaded before validating"))
    response = alice_api.generic("POST", URL, FRAMES % duration, content_type="application/json")
    assert response.status_code == 400
    assert "transitions[0].duration" in response.json()["errors"]


def test_impossible_dates_in_filters_are_400(alice_api):
    response = alice_api.get(URL, {"created_after": "2026-13-45T00:00:00"})
    assert response.status_code == 400 and "created_after" in response.json()["errors"]


def test_spoofed_forwarded_for_does_not_break_anonymous_limits(client):
    response = client.get(URL, HTTP_X_FORWARDED_FOR="9" * 300)
    assert response.status_code == 401


@pytest.mark.parametrize("state", ["succeeded", "failed", "canceled", "blocked"])
def test_cancel_of_an_ended_generation_is_409_naming_its_state(alice_api, user, state):
    output = {"output": "outputs/a.mp4"} if state == "succeeded" else {}
    generation = GenerationFactory(user=user, state=state, **output)
    response = alice_api.post(f"{URL}/{generation.pk}/cancel")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["state"]) == ("conflict", state)
    assert state in body["detail"]


def test_estimate_refuses_what_create_refuses(alice_api):
    """The same input checks: an http webhook target and a file that is not an image."""
    cases = (
        (lambda: {"prompt": "x", "webhook_url": "http://example.com/hook"}, "json", "webhook_url"),
        (lambda: {"prompt": "x", "image": upload("a.png", b"not an image")}, "multipart", "image"),
    )
    for body, fmt, field in cases:
        create = alice_api.post(URL, body(), format=fmt)
        estimate = alice_api.post("/api/v1/estimate", body(), format=fmt)
        assert create.status_code == estimate.status_code == 400, (create.json(), estimate.json())
        assert field in create.json()["errors"] and field in estimate.json()["errors"]
    assert not Generation.objects.exists()


def test_estimate_names_the_refusal_create_would_meet_now(alice_api, user, settings):
    settings.FREE_DAILY_PREVIEWS = 5
    fine = alice_api.post("/api/v1/estimate", {"prompt": "x"}, format="json").json()
    assert fine["refusal"] is None
    assert alice_api.post(URL, {"prompt": "one"}, format="json").status_code == 201
    busy = alice_api.post("/api/v1/estimate", {"prompt": "x"}, format="json").json()
    create = alice_api.post(URL, {"prompt": "x"}, format="json")
    assert create.status_code == busy["refusal"]["status"] == 429
    assert busy["refusal"]["limit"] == create.json()["limit"] == "max_in_flight"
