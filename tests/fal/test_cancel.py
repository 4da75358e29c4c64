"""Cancel from the generation page, at each stage (workflows.generations.generation_cancel)."""

import pytest
from django.urls import reverse

from generation.backends.fal import FalBackend
from generation.models import Generation, State
from workflows import pipeline

from .conftest import make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db


def cancel(client, generation):
    response = client.post(reverse("generation_cancel", args=[generation.pk]), follow=True)
    assert response.status_code == 200
    generation.refresh_from_db()
    return [str(message) for message in response.context["messages"]]


def test_cancel_before_submit_stops_it_at_once(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks
):
    generation = make_generation(user)
    assert cancel(alice_client, generation) == ["Canceled."]
    assert generation.state == State.CANCELED and generation.finished_at

    # The submit task that was already queued finds nothing to do.
    assert pipeline.generation_submit(generation_id=generation.pk) is False
    assert fake_fal.submits() == []


def test_cancel_while_submitting_cancels_at_fal_once_the_id_is_known(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    generation = make_generation(user)
    real_submit = FalBackend.submit

    def submit_while_user_cancels(self, row, **kwargs):
        assert cancel(alice_client, generation) == ["Canceled."]
        return real_submit(self, row, **kwargs)

    monkeypatch.setattr(FalBackend, "submit", submit_while_user_cancels)
    assert pipeline.generation_submit(generation_id=generation.pk) is False
    generation.refresh_from_db()
    assert generation.state == State.CANCELED
    (submit,) = fake_fal.submits()
    assert generation.provider_request_id == submit.request_id
    assert len(fake_fal.recorded("cancel", request_id=submit.request_id)) == 1
    assert fake_fal.get_request(submit.request_id)["cancelled"]


def test_cancel_while_in_fal_queue(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(fake_fal, "queue_time", 60)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE

    assert cancel(alice_client, generation) == ["Canceled."]
    assert generation.state == State.CANCELED
    (put,) = fake_fal.recorded("cancel", request_id=generation.provider_request_id)
    assert put.method == "PUT" and put.status == 202
    assert fake_fal.get_request(generation.provider_request_id)["cancelled"]

    # fal's own "cancelled" completion, seen by a poll afterwards, changes nothing.
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.CANCELED


def test_cancel_after_fal_completed_lets_the_job_finish(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    assert generation.state == State.IN_QUEUE, "we have not heard of the completion yet"

    messages = cancel(alice_client, generation)
    assert messages == ["Too late to cancel: the video is already being saved."]
    (put,) = fake_fal.recorded("cancel", request_id=generation.provider_request_id)
    assert put.status == 400  # ALREADY_COMPLETED
    assert generation.state == State.IN_QUEUE

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message

    assert cancel(alice_client, generation) == ["This generation had already finished."]
    assert generation.state == State.SUCCEEDED
