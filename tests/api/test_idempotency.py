import pytest

from generation.models import Generation
from restapi.idempotency import idempotency_begin
from restapi.problems import Problem

pytestmark = pytest.mark.django_db

URL = "/api/v1/generations"


def test_same_key_same_body_replays_the_first_response(alice_api):
    first = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Generation.objects.count() == 1


def test_same_key_other_body_is_422(alice_api):
    alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = alice_api.post(URL, {"prompt": "a bear"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_mismatch"
    assert Generation.objects.count() == 1


def test_same_key_while_running_is_409(alice_api, user):
    from rest_framework.parsers import JSONParser
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from restapi.idempotency import request_fingerprint

    raw = APIRequestFactory().post(URL, {"prompt": "a fox"}, format="json")
    fingerprint = request_fingerprint(Request(raw, parsers=[JSONParser()]))
    assert idempotency_begin(user=user, key="k-3", fingerprint=fingerprint) is None  # "running"
    response = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"


def test_refusals_are_replayed_too(alice_api):
    first = alice_api.post(
        URL, {"prompt": "x", "resolution": "4k"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4"
    )
    again = alice_api.post(
        URL, {"prompt": "x", "resolution": "4k"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4"
    )
    assert first.status_code == again.status_code == 400
    assert first.json() == again.json()


def test_keys_are_scoped_per_user(alice_api, bob_api):
    assert (
        alice_api.post(
            URL, {"prompt": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
        ).status_code
        == 201
    )
    assert (
        bob_api.post(URL, {"prompt": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code
        == 201
    )
    assert Generation.objects.count() == 2


def test_overlong_key_is_refused(user):
    with pytest.raises(Problem):
        idempotency_begin(user=user, key="x" * 300, fingerprint="f")


def test_a_limit_that_time_lifts_is_not_kept_for_the_key(alice_api, user, settings):
    """The draft keeps final answers only: the in-flight refusal (429) of a retried key runs
    again once the slot is free, and is created then."""
    settings.FREE_DAILY_PREVIEWS = 5
    first = alice_api.post(URL, {"prompt": "one"}, format="json")
    assert first.status_code == 201
    refused = alice_api.post(URL, {"prompt": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k-9")
    assert refused.status_code == 429
    body = refused.json()
    assert (body["code"], body["limit"], body["allowed"]) == ("plan_limit", "max_in_flight", 1)
    assert "1 job at a time" in body["detail"]
    assert int(refused["Retry-After"]) > 0
    assert refused["RateLimit"]  # the request-rate headers go with every answer
    alice_api.post(f"{URL}/{first.json()['id']}/cancel")
    again = alice_api.post(URL, {"prompt": "two"}, format="json", HTTP_IDEMPOTENCY_KEY="k-9")
    assert again.status_code == 201, again.json()
    assert "Idempotent-Replayed" not in again


def test_not_enough_credits_is_not_kept_either(alice_api, user, settings):
    settings.FREE_DAILY_PREVIEWS = 0
    refused = alice_api.post(URL, {"prompt": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k-10")
    assert refused.status_code == 402
    from billing import services as billing

    billing.credits_purchase(account=billing.account_for(user), credits=100, key="t", reason="t")
    again = alice_api.post(URL, {"prompt": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="k-10")
    assert again.status_code == 201


def test_a_replay_repeats_the_location_header(alice_api):
    first = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-11")
    again = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_IDEMPOTENCY_KEY="k-11")
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"]
    assert again["Location"].endswith(f"/api/v1/generations/{first.json()['id']}")


def test_a_validation_refusal_is_final_and_replayed(alice_api):
    body = {"prompt": "x", "seed": -1}
    first = alice_api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-12")
    again = alice_api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-12")
    assert first.status_code == again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
