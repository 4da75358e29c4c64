"""fal's submit answer carries the queue position: the row has it before the first poll."""

import time

import pytest
from django.test import Client
from django.urls import reverse

from api.services import apikey_create
from generation.models import State
from tests.fakefal import Outcome

from .conftest import make_generation, run_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_queue(fake_fal, monkeypatch):
    """Requests wait in the fake's queue for a minute; the test's own are let go at the end."""
    monkeypatch.setattr(fake_fal, "queue_time", 60)
    yield
    for request_id in fake_fal.request_ids():
        if fake_fal.state_of(request_id) == "IN_QUEUE":
            fake_fal.complete_now(request_id)


def test_row_has_the_queue_position_right_after_submit(
    fake_fal, long_queue, user, alice_client, django_capture_on_commit_callbacks
):
    fake_fal.plan_outcomes(Outcome.success(queue_position=7))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)

    assert generation.state == State.IN_QUEUE
    (submit,) = fake_fal.submits()
    assert submit.status == 200
    assert generation.queue_position == 7
    assert fake_fal.recorded("status") == [], "known before any poll"

    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "in_queue" and status["queue_position"] == 7
    page = alice_client.get(generation.get_absolute_url()).content.decode()
    assert "position 7" in page
    _, raw_key = apikey_create(user=user, name="script", scopes=["generations:read"])
    api = Client().get(
        reverse("api_generation", args=[generation.pk]), HTTP_AUTHORIZATION=f"Bearer {raw_key}"
    )
    assert api.status_code == 200, api.content
    assert api.json()["queue_position"] == 7


def test_submit_position_counts_the_requests_ahead(
    fake_fal, long_queue, user, django_capture_on_commit_callbacks
):
    # Requests of earlier tests that are due to start leave the fake's queue now, not between
    # the two submits (counts() brings every request up to date).
    time.sleep(0.1)
    fake_fal.counts()
    first = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    second = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert first.queue_position is not None
    assert second.queue_position == first.queue_position + 1, "one more request ahead"
    assert fake_fal.recorded("status") == []


def test_submit_with_webhook_also_records_the_position(
    fake_fal, long_queue, with_webhooks, user, django_capture_on_commit_callbacks
):
    fake_fal.plan_outcomes(Outcome.success(queue_position=3))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.submits()[0].param("fal_webhook")
    assert generation.queue_position == 3


@pytest.mark.parametrize(
    "position",
    [pytest.param(None, id="missing"), "3", -1, True, 2.5],
)
def test_odd_or_missing_queue_position_is_left_empty(
    fake_fal, user, django_capture_on_commit_callbacks, position
):
    base = f"{fake_fal.base_url}/fal-ai/pika/requests/req-odd"
    answer = {
        "status": "IN_QUEUE",
        "request_id": "req-odd",
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
    }
    if position is not None:
        answer["queue_position"] = position
    fake_fal.fail_next("submit", 1, status=200, error_type=None, mode="raw", body=answer)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE
    assert generation.provider_request_id == "req-odd"
    assert generation.queue_position is None
