"""Cancel from the generation page, at each stage (workflows.generations.generation_cancel)."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from api.models import Scope
from api.services import apikey_create
from core.models import AuditAction, AuditEntry
from generation.backends.fal import FalBackend
from generation.models import Generation, State
from tests.api.conftest import client_with
from tests.support.forms import FORM
from workflows import pipeline
from workflows.tracking import track_once

from .conftest import ledger_kinds, make_generation, run_submit, track_until_terminal

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


ASKED = (
    "Asked the provider to stop it. If it has got too far to stop, it finishes and is charged "
    "as usual."
)


def running_at_fal(client, fake_fal, capture) -> Generation:
    """A job made on the site, paid for with held credits, that fal has started running."""
    fake_fal.queue_time = 0
    fake_fal.inference_time = 3
    with capture(execute=True):
        assert client.post(reverse("generate"), FORM).status_code == 302
    generation = Generation.objects.get()
    deadline = time.monotonic() + 20
    while generation.state != State.IN_PROGRESS and time.monotonic() < deadline:
        Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
        with capture(execute=True):
            track_once()
        generation.refresh_from_db()
    assert generation.state == State.IN_PROGRESS, generation.state
    assert ledger_kinds(generation) == ["hold"]
    return generation


def asked_to_stop_while_running(client, fake_fal, capture, monkeypatch) -> Generation:
    """A running job whose owner pressed Cancel, and that fal goes on running for now."""
    generation = running_at_fal(client, fake_fal, capture)
    monkeypatch.setattr(fake_fal, "cancel_stops_in_progress", False)
    assert cancel(client, generation) == [ASKED]
    return generation


def fal_honours_the_cancel_now(fake_fal, generation, monkeypatch) -> None:
    """fal's model app honours the stop signal a moment later."""
    monkeypatch.setattr(fake_fal, "cancel_stops_in_progress", True)
    assert FalBackend().cancel(generation) is True


def assert_canceled_by_its_owner(generation) -> None:
    generation.refresh_from_db()
    assert generation.state == State.CANCELED, (generation.state, generation.error_message)
    assert ledger_kinds(generation) == ["hold", "release"]
    entry = AuditEntry.objects.get(
        action=AuditAction.GENERATION_CANCEL, target_id=str(generation.pk)
    )
    assert entry.reason == "Canceled by its owner"


def test_a_running_job_fal_stops_is_canceled_at_once_and_refunded(
    fake_fal, alice_client, django_capture_on_commit_callbacks
):
    generation = running_at_fal(alice_client, fake_fal, django_capture_on_commit_callbacks)

    assert cancel(alice_client, generation) == ["Canceled."]
    assert generation.state == State.CANCELED and generation.cancel_requested_at
    assert ledger_kinds(generation) == ["hold", "release"]
    # Asked once; its status, read right after, said it had stopped.
    assert len(fake_fal.recorded("cancel", request_id=generation.provider_request_id)) == 1


def test_a_running_job_fal_does_not_stop_finishes_and_is_charged(
    fake_fal, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    """fal only signals a running request to stop; one that runs on is delivered and charged
    (fal charged us for it), and the owner was told so when they asked."""
    capture = django_capture_on_commit_callbacks
    generation = asked_to_stop_while_running(alice_client, fake_fal, capture, monkeypatch)
    assert generation.state == State.IN_PROGRESS and generation.cancel_requested_at
    assert generation.next_check_at <= timezone.now(), "the tracker looks at it at once"
    page = alice_client.get(generation.get_absolute_url()).content.decode()
    assert "Stopping" in page and "has got too far to stop" in page
    assert reverse("generation_cancel", args=[generation.pk]) not in page, "asked already"
    assert (
        alice_client.get(reverse("generation_status", args=[generation.pk])).json()["label"]
        == "Stopping"
    )

    track_until_terminal(capture)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.output
    assert ledger_kinds(generation) == ["capture", "hold"]


def test_a_running_job_fal_stops_later_ends_canceled_by_its_owner(
    fake_fal, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    capture = django_capture_on_commit_callbacks
    generation = asked_to_stop_while_running(alice_client, fake_fal, capture, monkeypatch)
    fal_honours_the_cancel_now(fake_fal, generation, monkeypatch)
    track_until_terminal(capture)
    assert_canceled_by_its_owner(generation)


def test_the_api_says_a_cancel_of_a_running_job_is_only_requested(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    generation = running_at_fal(alice_client, fake_fal, django_capture_on_commit_callbacks)
    monkeypatch.setattr(fake_fal, "cancel_stops_in_progress", False)
    api = client_with(apikey_create(user=user, name="script", scopes=list(Scope.values))[1])

    response = api.post(f"/api/v1/generations/{generation.pk}/cancel")
    assert response.status_code == 202, response.content
    assert response.json()["cancel"] == "requested"
    assert response.json()["state"] == "in_progress"
    # Asking again is harmless: fal is asked again, the answer is the same.
    again = api.post(f"/api/v1/generations/{generation.pk}/cancel")
    assert again.status_code == 202 and again.json()["cancel"] == "requested"


def test_with_webhooks_a_cancel_fal_honours_later_ends_canceled_not_failed(
    fake_fal, with_webhooks, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    """fal's webhook for a cancelled request is an ERROR ("Request cancelled"): the row is
    canceled for its owner, credits back, not failed."""
    capture = django_capture_on_commit_callbacks
    generation = asked_to_stop_while_running(alice_client, fake_fal, capture, monkeypatch)
    fal_honours_the_cancel_now(fake_fal, generation, monkeypatch)
    fake_fal.wait_for_webhooks(1)
    (answer,) = fake_fal.webhooks.deliver(capture)
    assert answer.status_code == 204
    assert_canceled_by_its_owner(generation)


def test_with_webhooks_fal_news_of_the_cancel_before_its_status_still_says_canceled(
    fake_fal, with_webhooks, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    """The webhook for the cancelled request can reach us before the status read that
    follows the cancel: the owner still reads "Canceled."."""
    capture = django_capture_on_commit_callbacks
    generation = running_at_fal(alice_client, fake_fal, capture)
    real_status = FalBackend.status

    def webhook_first(self, row):
        fake_fal.wait_for_webhooks(1)
        (answer,) = fake_fal.webhooks.deliver(capture)
        assert answer.status_code == 204
        return real_status(self, row)

    monkeypatch.setattr(FalBackend, "status", webhook_first)
    assert cancel(alice_client, generation) == ["Canceled."]
    assert generation.state == State.CANCELED
    assert ledger_kinds(generation) == ["hold", "release"]
