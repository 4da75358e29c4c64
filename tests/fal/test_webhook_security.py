"""/webhooks/fal/: only a fresh call signed by a key in fal's JWKS can change anything."""

import json
import time

import pytest
from django.core.cache import cache

from generation.models import Generation, State
from workflows import fal_webhooks

from .conftest import make_generation, run_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed(fake_fal, with_webhooks, user, django_capture_on_commit_callbacks):
    """A submitted generation whose request fal finished, its webhook not yet delivered."""
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    fake_fal.wait_for_webhooks(1)
    (pending,) = fake_fal.webhooks.pending
    fake_fal.webhooks.pending.clear()
    _url, headers, body = pending
    return generation, headers, body


def assert_unchanged(generation):
    before = (generation.state, generation.updated_at, generation.provider_output_url)
    generation.refresh_from_db()
    assert (generation.state, generation.updated_at, generation.provider_output_url) == before
    assert generation.state == State.IN_QUEUE


def test_the_genuine_webhook_is_accepted(fake_fal, completed):
    generation, headers, body = completed
    assert fake_fal.webhooks.post(headers, body).status_code == 204
    generation.refresh_from_db()
    assert generation.state in (State.FINALIZING, State.SUCCEEDED)


def test_forged_signature_is_refused(fake_fal, completed):
    generation, headers, body = completed
    forged = body.replace(b'"OK"', b'"ERROR"')
    assert forged != body
    response = fake_fal.webhooks.post(headers, forged)
    assert response.status_code == 401
    assert "signature does not verify" in response.json()["detail"]
    assert_unchanged(generation)


def test_signature_by_an_unpublished_key_is_refused(fake_fal, completed):
    generation, _headers, body = completed
    headers = fake_fal.sign_webhook(generation.provider_request_id, body, unpublished=True)
    response = fake_fal.webhooks.post(headers, body)
    assert response.status_code == 401
    assert_unchanged(generation)


def test_stale_timestamp_is_refused(fake_fal, completed):
    generation, _headers, body = completed
    stale = int(time.time()) - 301
    headers = fake_fal.sign_webhook(generation.provider_request_id, body, timestamp=stale)
    response = fake_fal.webhooks.post(headers, body)
    assert response.status_code == 401
    assert "timestamp" in response.json()["detail"]
    assert_unchanged(generation)


@pytest.mark.parametrize("missing", fal_webhooks.REQUIRED_HEADERS)
def test_missing_header_is_refused(fake_fal, completed, missing):
    generation, headers, body = completed
    headers = {name: value for name, value in headers.items() if name.lower() != missing.lower()}
    response = fake_fal.webhooks.post(headers, body)
    assert response.status_code == 401
    assert missing in response.json()["detail"]
    assert_unchanged(generation)


def test_malformed_signature_and_timestamp_are_refused(fake_fal, completed):
    generation, headers, body = completed
    for name, value in (
        ("X-Fal-Webhook-Signature", "not-hex"),
        ("X-Fal-Webhook-Timestamp", "yesterday"),
    ):
        response = fake_fal.webhooks.post({**headers, name: value}, body)
        assert response.status_code == 401
    assert_unchanged(generation)


def test_signed_but_malformed_bodies_are_refused(fake_fal, completed):
    generation, _headers, _body = completed
    request_id = generation.provider_request_id
    for body in (b"not json", json.dumps({"request_id": "someone-else", "status": "OK"}).encode()):
        headers = fake_fal.sign_webhook(request_id, body)
        assert fake_fal.webhooks.post(headers, body).status_code == 400
    assert_unchanged(generation)


def test_webhook_for_an_unknown_request_is_acknowledged_and_ignored(fake_fal, completed):
    generation, _headers, _body = completed
    body = json.dumps({"request_id": "not-ours", "status": "OK", "payload": {}}).encode()
    response = fake_fal.webhooks.post(fake_fal.sign_webhook("not-ours", body), body)
    assert response.status_code == 204
    assert_unchanged(generation)


def test_each_process_keeps_the_parsed_keys_for_a_while(fake_fal, completed):
    _generation, headers, body = completed
    fetches = fake_fal.jwks_fetches
    fal_webhooks.verify(headers, body)
    # Gone from the shared cache: the process still has them, no cache read, no fetch.
    cache.delete(fal_webhooks.JWKS_CACHE_KEY)
    fal_webhooks.verify(headers, body)
    assert fake_fal.jwks_fetches - fetches == 1
    # Once the memo is older than JWKS_MEMO_SECONDS the process reads the cache again (empty
    # here, so it fetches).
    fal_webhooks._memo["until"] = 0.0
    fal_webhooks.verify(headers, body)
    assert fake_fal.jwks_fetches - fetches == 2


def test_jwks_is_cached_and_refetched_when_fal_rotates_its_key(fake_fal, completed):
    generation, headers, body = completed
    fetches = fake_fal.jwks_fetches
    fal_webhooks.verify(headers, body)
    fal_webhooks.verify(headers, body)
    assert fake_fal.jwks_fetches - fetches == 1, "the second check used the cached keys"

    fake_fal.rotate_keys()
    rotated = fake_fal.sign_webhook(generation.provider_request_id, body)
    assert fake_fal.webhooks.post(rotated, body).status_code == 204
    assert fake_fal.jwks_fetches - fetches == 2, "an unknown key made it fetch the JWKS again"
    generation.refresh_from_db()
    assert generation.state in (State.FINALIZING, State.SUCCEEDED)
    assert Generation.objects.filter(state=State.FAILED).count() == 0


def test_jwks_keys_without_kty_or_crv_are_used_and_other_kinds_ignored(
    fake_fal, completed, monkeypatch
):
    """fal-protocol §3 promises only each key's `x`: a JWKS that leaves out `kty` and `crv`
    still verifies, and a key of another kind beside it is skipped, not fatal."""
    generation, headers, body = completed
    published = fake_fal.jwks()["keys"]
    bare = [{"x": key["x"]} for key in published]
    other = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}
    monkeypatch.setattr(fake_fal, "jwks", lambda: {"keys": [other, *bare]})

    assert fake_fal.webhooks.post(headers, body).status_code == 204
    generation.refresh_from_db()
    assert generation.state in (State.FINALIZING, State.SUCCEEDED)
    assert cache.get(fal_webhooks.JWKS_CACHE_KEY) == [key["x"] for key in published]
