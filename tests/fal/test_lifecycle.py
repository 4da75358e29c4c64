"""A generation's life on the fal backend: submit, webhook or tracker, finalize, failures."""

import time

import pytest
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from generation.models import Generation, State
from moderation.models import ModerationCase
from tests.factories import UserFactory
from tests.fakefal import Outcome
from tests.support.forms import FORM
from tests.support.media import stored_credentials
from workflows import pipeline
from workflows.review import held_approve
from workflows.tracking import track_once

from .conftest import PUBLIC_BASE_URL, make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db


def test_happy_path_with_webhook(
    fake_fal, with_webhooks, alice_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("generate"), FORM)
    assert response.status_code == 302
    generation = Generation.objects.get()
    assert generation.state == State.IN_QUEUE
    assert generation.attempts == 1

    (submit,) = fake_fal.submits()
    assert submit.path == "/fal-ai/pika/v2.2/text-to-video"
    assert submit.json == generation.arguments
    assert submit.json["seed"] == generation.seed and submit.json["prompt"] == "a red fox in snow"
    # The attempt's token, recorded before the POST, names the row if the answer is lost.
    assert generation.submit_token and len(generation.submit_token) == 32
    assert submit.param("fal_webhook") == (
        f"{PUBLIC_BASE_URL}/webhooks/fal/?attempt={generation.submit_token}"
    )
    assert float(submit.header("x-fal-request-timeout")) == 10800  # fal's start timeout
    assert submit.header("authorization") == "Key fake-key-id:fake-key-secret"
    assert generation.provider_request_id == submit.request_id
    assert generation.provider_urls["status_url"].endswith(f"/requests/{submit.request_id}/status")

    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(1)
    (answer,) = fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    assert answer.status_code == 204

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.polls == 0, "the webhook alone finished it"
    assert generation.video_codec == "h264" and generation.video_width == 320
    assert default_storage.exists(generation.output.name)
    assert default_storage.exists(generation.poster.name)
    assert generation.provider_output_url == "", "the fallback link goes once our copy exists"
    credentials = stored_credentials(generation.output.name)
    assert credentials.valid and credentials.label == generation.c2pa_manifest
    assert credentials.software_agent == "fal-ai/pika/v2.2/text-to-video"
    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "succeeded" and status["video_url"]
    assert fake_fal.recorded("result") == [], "the webhook carried the output"
    assert len(fake_fal.recorded("file")) == 1


def test_happy_path_without_webhook_tracker_polls(
    fake_fal, user, django_capture_on_commit_callbacks
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE
    (submit,) = fake_fal.submits()
    assert submit.param("fal_webhook") is None

    track_until_terminal(django_capture_on_commit_callbacks)

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.polls >= 1
    assert generation.inference_seconds > 0  # fal's metrics.inference_time, recorded
    assert generation.in_queue_at and generation.finalizing_at and generation.finished_at
    assert default_storage.exists(generation.output.name)
    assert len(fake_fal.submits()) == 1


def test_the_poll_that_sees_the_end_saves_the_video_link_for_finalize(
    fake_fal, user, django_capture_on_commit_callbacks, monkeypatch
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    with django_capture_on_commit_callbacks(execute=False) as finalize_tasks:
        Generation.objects.filter(pk=generation.pk).update(next_check_at=timezone.now())
        assert track_once() == 1
    generation.refresh_from_db()
    assert generation.state == State.FINALIZING
    assert len(finalize_tasks) == 1
    assert generation.provider_output_url.startswith(f"{fake_fal.base_url}/files/")
    # The worker that had the task died; by the time the finalize runs again fal has dropped
    # the result. The saved link is all it needs.
    monkeypatch.setattr(fake_fal, "result_retention_s", 0)
    assert pipeline.generation_finalize(generation_id=generation.pk, lease=generation.next_check_at)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert len(fake_fal.recorded("result")) == 1


def test_result_fetch_failing_at_the_end_is_polled_again(
    fake_fal, user, django_capture_on_commit_callbacks
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.fail_next("result", 1, status=503)
    Generation.objects.filter(pk=generation.pk).update(next_check_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert track_once() == 1
    generation.refresh_from_db()
    assert generation.state == State.IN_QUEUE, "not failed, not resubmitted"
    assert generation.polls == 1 and generation.attempts == 1
    assert generation.next_check_at > timezone.now()
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert len(fake_fal.submits()) == 1


def test_queue_position_and_stage_reach_the_page(
    fake_fal, user, alice_client, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(fake_fal, "queue_time", 60)
    fake_fal.plan_outcomes(Outcome.success(queue_position=7))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    track_once()
    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "in_queue"
    assert 0 < status["queue_position"] <= 7
    page = alice_client.get(generation.get_absolute_url()).content.decode()
    assert f"position {status['queue_position']}" in page

    fake_fal.start_now(generation.provider_request_id)
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
    track_once()
    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "in_progress" and status["queue_position"] is None


def test_dropped_webhook_is_finished_by_the_tracker(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(fake_fal, "drop_webhooks", True)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.submits()[0].param("fal_webhook")
    assert fake_fal.wait_completed(generation.provider_request_id)

    track_until_terminal(django_capture_on_commit_callbacks)

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert fake_fal.webhooks.pending == []
    assert len(fake_fal.recorded("result")) == 1


def test_duplicated_webhooks_racing_the_tracker_move_the_row_once(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(fake_fal, "webhook_duplicates", 3)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(3)
    assert len(fake_fal.webhooks.pending) == 3

    finalizes = []
    real_finalize = pipeline.generation_finalize
    monkeypatch.setattr(
        pipeline,
        "generation_finalize",
        lambda **kw: finalizes.append(real_finalize(**kw)) or finalizes[-1],
    )
    transitions = []
    real_transition = Generation.objects.transition

    def counting_transition(pk, to, **kw):
        moved = real_transition(pk, to, **kw)
        transitions.append((to, moved))
        return moved

    monkeypatch.setattr(Generation.objects, "transition", counting_transition)

    # The tracker sees completion first and moves the row to finalizing, then three copies of
    # the webhook arrive while the finalize task is still waiting to run.
    with django_capture_on_commit_callbacks(execute=False) as tracker_tasks:
        track_once()
    answers = fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    for task in tracker_tasks:
        task()

    assert [answer.status_code for answer in answers] == [204, 204, 204]
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED
    assert [to for to, moved in transitions if moved] == [State.FINALIZING, State.SUCCEEDED]
    assert finalizes.count(True) == 1
    assert len(fake_fal.recorded("result")) == 1
    assert default_storage.listdir(f"outputs/{user.pk}")[1] == [f"{generation.pk}.mp4"]


def test_transient_5xx_on_submit_is_retried_and_fal_charges_once(
    fake_fal, user, django_capture_on_commit_callbacks
):
    fake_fal.fail_next_submits(2, status=503, error_type="runner_scheduling_failure")
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.QUEUED
    assert generation.error_code == "runner_scheduling_failure"
    assert generation.next_check_at > generation.updated_at, "retried after a back-off"

    for _ in range(3):
        Generation.objects.filter(pk=generation.pk, state=State.QUEUED).update(
            next_check_at=generation.created_at
        )
        with django_capture_on_commit_callbacks(execute=True):
            track_once()
    track_until_terminal(django_capture_on_commit_callbacks)

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.attempts == 3
    assert [r.status for r in fake_fal.submits()] == [503, 503, 200]
    assert len(fake_fal.request_ids()) - len(set(fake_fal.request_ids())) == 0
    charged = [rid for rid in fake_fal.request_ids() if rid == generation.provider_request_id]
    assert charged == [generation.provider_request_id]
    assert len([r for r in fake_fal.submits() if r.status == 200]) == 1


def test_infrastructure_failures_give_up_after_max_attempts(
    fake_fal, user, settings, django_capture_on_commit_callbacks
):
    settings.GENERATION_MAX_ATTEMPTS = 2
    fake_fal.fail_next_submits(5, status=503)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
    with django_capture_on_commit_callbacks(execute=True):
        track_once()
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.attempts == 2
    assert "gave up after 2 attempts" in generation.error_message
    assert len(fake_fal.submits()) == 2


def test_validation_error_fails_at_once_with_the_field_message(
    fake_fal, user, django_capture_on_commit_callbacks
):
    fake_fal.plan_outcomes(
        Outcome.validation_error(
            "ensure this value has at most 1000 characters", loc=["body", "prompt"]
        )
    )
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.error_code == "provider_validation"
    assert generation.error_message == "prompt: ensure this value has at most 1000 characters"
    assert generation.attempts == 1 and len(fake_fal.submits()) == 1


def test_422_on_submit_fails_without_retry(fake_fal, user, django_capture_on_commit_callbacks):
    fake_fal.fail_next_submits(
        1,
        status=422,
        mode="raw",
        body={"detail": [{"loc": ["body", "duration"], "msg": "must be 5 or 10", "type": "enum"}]},
    )
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.FAILED
    assert generation.error_code == "provider_validation"
    assert generation.error_message == "duration: must be 5 or 10"
    assert generation.next_check_at is None and len(fake_fal.submits()) == 1


def test_content_policy_refusal_by_webhook_is_held_without_retry(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    """fal's content_policy_violation is a safety signal, not an outage: held for a moderator
    (credits still held), as a flagged prompt is; never resubmitted on its own."""
    fake_fal.plan_outcomes(Outcome.content_policy("The prompt was flagged by the safety filter"))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    fake_fal.wait_for_webhooks(1)
    fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.HELD and generation.next_check_at is None
    assert generation.finished_at is None and not generation.output
    assert generation.error_code == "content_policy"  # what an API client reads meanwhile
    case = ModerationCase.objects.get(generation=generation)
    assert case.source == "provider" and "flagged by the safety filter" in case.detail
    assert "under review" in case.explanation
    assert len(fake_fal.submits()) == 1
    # A moderator finds the refusal wrong: approving sends the request again (the next
    # outcome is the fake's default success); the credits held all along are then charged.
    moderator = UserFactory(email="mod@example.com", is_staff=True)
    moderator.groups.add(Group.objects.get(name="moderators"))
    with django_capture_on_commit_callbacks(execute=True):
        assert held_approve(generation=generation, moderator=moderator)  # submits on commit
    generation.refresh_from_db()
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(2)
    fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED and len(fake_fal.submits()) == 2
    assert generation.error_code == ""


def test_content_policy_refusal_found_by_polling_is_held(
    fake_fal, user, django_capture_on_commit_callbacks
):
    fake_fal.plan_outcomes(Outcome.content_policy("Output flagged by the safety checker"))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    for _ in range(500):  # the tracker's passes, as track_until_terminal runs them
        with django_capture_on_commit_callbacks(execute=True):
            track_once()
        generation.refresh_from_db()
        if generation.state not in (State.IN_QUEUE, State.IN_PROGRESS):
            break
        time.sleep(0.02)
    assert generation.state == State.HELD
    assert "safety checker" in ModerationCase.objects.get(generation=generation).detail
    assert len(fake_fal.submits()) == 1


def test_infra_error_at_fal_resubmits(fake_fal, user, django_capture_on_commit_callbacks):
    fake_fal.plan_outcomes(Outcome.infra_error("runner_disconnected"))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    with django_capture_on_commit_callbacks(execute=True):
        track_once()
    generation.refresh_from_db()
    assert generation.state == State.QUEUED and generation.error_code == "runner_disconnected"
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED and generation.attempts == 2


def test_expired_result_is_a_clear_failure(
    fake_fal, user, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(fake_fal, "result_retention_s", 0)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.error_code == "result_expired"
    assert "no longer holds this result" in generation.error_message
    assert not generation.output


@pytest.mark.parametrize(
    ("outcome", "message"),
    [
        (Outcome.malformed(body={"video": {}}), "has no video URL"),
        (Outcome.non_json("<html>oops</html>"), "not JSON"),
        (Outcome.bad_file("not_video"), "not a playable video"),
        (Outcome.bad_file("html"), "text/html"),
    ],
)
def test_malformed_result_fails_clearly(
    fake_fal, user, django_capture_on_commit_callbacks, outcome, message
):
    fake_fal.plan_outcomes(outcome)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert message in generation.error_message
    assert generation.error_code == "malformed_result"
    assert not generation.output


def test_a_webhook_finish_records_how_long_the_job_ran(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    # fal's webhook carries no metrics: the run time is taken from when we saw it running, so
    # the tracker learns how long such jobs take (generation.polling) with webhooks on too.
    monkeypatch.setattr(fake_fal, "inference_time", 0.6)
    generation = run_submit(
        make_generation(user, state=State.QUEUED), django_capture_on_commit_callbacks
    )
    deadline = time.monotonic() + 10
    while generation.state != State.IN_PROGRESS and time.monotonic() < deadline:
        Generation.objects.filter(pk=generation.pk).update(next_check_at=timezone.now())
        with django_capture_on_commit_callbacks(execute=True):
            track_once()
        generation.refresh_from_db()
        time.sleep(0.02)
    assert generation.state == State.IN_PROGRESS
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(1)
    (answer,) = fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    assert answer.status_code == 204

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED
    ran = (generation.finished_at - generation.in_progress_at).total_seconds()
    assert 0.2 < generation.inference_seconds <= ran
