"""No duplicate paid jobs: a submit whose answer was lost is reconciled, never sent blindly again.

The fake fal accepts the POST (a real, paid job at fal) and then drops the connection or
holds it past the client's read timeout (`fail_next_submits(mode="lost")`); it counts the
requests it queued, so each test can say how many jobs fal would have billed.
"""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from generation.backends import SUBMIT_UNCONFIRMED
from generation.backends import fal as fal_backend
from generation.models import Generation, State
from tests.fakefal import Outcome
from workflows import pipeline, tracking
from workflows.tracking import track_once

from .conftest import PUBLIC_BASE_URL, make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db


def queued_at_fal(fake, before: set) -> list[str]:
    """The requests fal queued (and would bill) since `before`."""
    return [rid for rid in fake.request_ids() if rid not in before]


def test_a_lost_submit_answer_is_reconciled_by_the_webhook_with_one_fal_request(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    before = set(fake_fal.request_ids())
    fake_fal.fail_next_submits(1, mode="lost")  # fal queues the job, the answer never comes
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)

    assert generation.state == State.SUBMITTING
    assert generation.error_code == SUBMIT_UNCONFIRMED
    assert generation.provider_request_id is None
    (request_id,) = queued_at_fal(fake_fal, before)
    (post,) = fake_fal.submits()
    assert post.status == 0, "the fake dropped the connection after queueing the job"
    assert post.param("fal_webhook") == (
        f"{PUBLIC_BASE_URL}/webhooks/fal/?attempt={generation.submit_token}"
    )

    # Neither the tracker nor the reaper (past the submit stage's 5-minute deadline) sends it
    # again while fal may still report it.
    with django_capture_on_commit_callbacks(execute=True):
        track_once()
        tracking.reap(now=timezone.now() + timedelta(minutes=30))
    generation.refresh_from_db()
    assert generation.state == State.SUBMITTING
    assert len(fake_fal.submits()) == 1

    # fal finishes the job it did queue; its webhook names our attempt.
    assert fake_fal.wait_completed(request_id)
    fake_fal.wait_for_webhooks(1)
    (answer,) = fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    assert answer.status_code == 204
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.provider_request_id == request_id
    assert generation.error_code == ""
    assert generation.attempts == 1
    assert queued_at_fal(fake_fal, before) == [request_id], "exactly one paid job at fal"
    assert len(fake_fal.submits()) == 1


def test_a_submit_read_timeout_is_sent_once_and_confirmed_by_the_webhook(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    # fal-client would retry a read timeout by itself (up to 10 POSTs): it must not.
    monkeypatch.setattr(fal_backend, "CALL_TIMEOUT", 0.3)
    fal_backend._client.cache_clear()
    before = set(fake_fal.request_ids())
    fake_fal.fail_next_submits(1, mode="lost", hold_s=1.0)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.SUBMITTING
    assert generation.error_code == SUBMIT_UNCONFIRMED
    (request_id,) = queued_at_fal(fake_fal, before)

    assert fake_fal.wait_completed(request_id)
    fake_fal.wait_for_webhooks(1)
    fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert queued_at_fal(fake_fal, before) == [request_id]
    # The fake records a request once it has answered it: here after its hold.
    deadline = time.monotonic() + 5
    while not fake_fal.submits() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_fal.submits()) == 1


def test_a_lost_submit_is_sent_again_only_after_the_reconcile_deadline(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    # fal never got it this time: the connection broke and no job exists, so no webhook.
    fake_fal.fail_next_submits(1, mode="disconnect")
    before = set(fake_fal.request_ids())
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.SUBMITTING, "a reset may come after fal got the POST"
    first_token = generation.submit_token

    reconcile = timedelta(seconds=settings.FAL_SUBMIT_RECONCILE_SECONDS)
    sent = Generation.objects.filter(pk=generation.pk)
    sent.update(submitting_at=timezone.now() - reconcile + timedelta(minutes=1))
    assert tracking.reap()["requeued"] == 0
    sent.update(submitting_at=timezone.now() - reconcile - timedelta(seconds=1))
    assert tracking.reap()["requeued"] == 1
    generation.refresh_from_db()
    assert generation.state == State.QUEUED and generation.error_code == SUBMIT_UNCONFIRMED

    generation = run_submit(generation, django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE
    assert generation.attempts == 2
    assert generation.submit_token != first_token, "a late webhook of the first attempt is not it"
    assert len(queued_at_fal(fake_fal, before)) == 1


def test_without_a_webhook_a_lost_submit_fails_unbilled_and_is_not_sent_again(
    fake_fal, user, django_capture_on_commit_callbacks
):
    before = set(fake_fal.request_ids())
    fake_fal.fail_next_submits(1, mode="lost")
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.FAILED
    assert generation.error_code == SUBMIT_UNCONFIRMED
    assert "Nothing was charged" in generation.error_message
    tracking.reap(now=timezone.now() + timedelta(days=1))
    assert len(queued_at_fal(fake_fal, before)) == 1
    assert len(fake_fal.submits()) == 1


def test_a_refused_connect_is_no_ambiguity(fake_fal, user, django_capture_on_commit_callbacks):
    """A connect that failed sent nothing: an ordinary retry, no reconciliation."""
    generation = make_generation(user)
    fal_backend._client.cache_clear()
    import fal_client.client as fal_internals

    real = fal_internals.QUEUE_URL_FORMAT
    fal_internals.QUEUE_URL_FORMAT = "https://127.0.0.1:9/"  # nothing listens on port 9
    try:
        generation = run_submit(generation, django_capture_on_commit_callbacks)
    finally:
        fal_internals.QUEUE_URL_FORMAT = real
    assert generation.state == State.QUEUED
    assert generation.error_code == "transport_error"


def test_a_fal_side_retry_result_is_fetched_by_its_gateway_request_id(
    fake_fal, user, django_capture_on_commit_callbacks
):
    """fal ran the job again on its side: the result is kept under the retried run's id only."""
    fake_fal.plan_outcomes(Outcome.success(fal_retries=1))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    request_id = generation.provider_request_id
    assert generation.gateway_request_id == "", "the submit answer names the same run"
    assert fake_fal.wait_completed(request_id)
    gateway = fake_fal.get_request(request_id)["gateway_request_id"]
    assert gateway != request_id

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.gateway_request_id == gateway
    results = fake_fal.recorded("result")
    assert [r.status for r in results] == [404, 200]
    assert results[-1].path.endswith(f"/requests/{gateway}")


def test_a_fal_side_retry_named_by_the_webhook_is_stored(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    fake_fal.plan_outcomes(Outcome.success(fal_retries=2))
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(1)
    fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    gateway = fake_fal.get_request(generation.provider_request_id)["gateway_request_id"]
    assert generation.gateway_request_id == gateway != generation.provider_request_id


def test_a_webhook_naming_an_attempt_given_up_changes_nothing(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    fake_fal.wait_for_webhooks(1)
    url, headers, body = fake_fal.webhooks.pending.pop()
    # The attempt was given up and sent again meanwhile: a new token, a new request.
    Generation.objects.filter(pk=generation.pk).update(
        submit_token="0" * 32, provider_request_id="another-request"
    )
    response = fake_fal.webhooks.post(headers, body, url)
    assert response.status_code == 204
    generation.refresh_from_db()
    assert generation.state == State.IN_QUEUE and generation.provider_request_id == (
        "another-request"
    )


def test_the_submit_answer_after_its_own_webhook_keeps_the_job(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    """A job so quick that fal's webhook arrives before our submit recorded its answer: the
    webhook adopts the attempt, and the late answer neither cancels nor resubmits it."""
    generation = make_generation(user)
    real_submit = fal_backend.FalBackend.submit

    def submit_then_webhook_first(self, row, *, webhook_url):
        submitted = real_submit(self, row, webhook_url=webhook_url)
        fake_fal.wait_for_webhooks(1)
        fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
        return submitted

    monkeypatch.setattr(fal_backend.FalBackend, "submit", submit_then_webhook_first)
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.generation_submit(generation_id=generation.pk)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert fake_fal.recorded("cancel") == []
    assert len(fake_fal.submits()) == 1
