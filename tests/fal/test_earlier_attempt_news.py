"""News about an earlier attempt's fal request never moves the attempt that replaced it.

A retried job is sent again as a new fal request; the row then records the new request id.
Until then (while it is queued again and being submitted) it still records the old one, and a
poll claimed before the retry may still be waiting on fal's answer about the old one. Either
kind of news arriving late (a slow status call, a duplicated or delayed webhook, both of which
benchmarks/chaos injects) must leave the new attempt alone: moving it back to queued would
abandon a job fal is running (and bills) and spend one of the row's attempts.
"""

import pytest
from django.db.models import F

from core.models import AuditAction, AuditEntry
from generation.models import Generation, State
from tests.fakefal import Outcome
from workflows import pipeline
from workflows.lifecycle import TRACKER, generation_move
from workflows.tracking import track_once

from .conftest import make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db


def test_a_slow_poll_about_the_earlier_request_leaves_the_new_one_alone(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    fake_fal.plan_outcomes(Outcome.infra_error("request_timeout"), Outcome.success())
    generation = run_submit(make_generation(user), capture)
    first = generation.provider_request_id
    claimed = Generation.objects.get(pk=generation.pk)  # what a tracker claimed, to poll
    assert fake_fal.wait_completed(first)
    # fal's webhook about the timeout comes first: the job is queued again and sent again.
    fake_fal.wait_for_webhooks(1)
    fake_fal.webhooks.deliver(capture)
    generation.refresh_from_db()
    assert generation.state == State.QUEUED
    generation = run_submit(generation, capture)
    second = generation.provider_request_id
    assert generation.state == State.IN_QUEUE and second != first

    # Only now does the claimed poll's answer about the first request arrive.
    with capture(execute=True):
        pipeline.generation_poll(generation_id=generation.pk, generation=claimed)

    generation.refresh_from_db()
    assert (generation.state, generation.provider_request_id) == (State.IN_QUEUE, second)
    assert generation.attempts == 2
    assert fake_fal.get_request(second)["cancelled"] is False
    fake_fal.webhooks.pending.clear()  # the second request's webhook: let the tracker finish
    track_until_terminal(capture)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED and generation.attempts == 2
    assert len(fake_fal.submits()) == 2, "fal ran the job twice, not three times"


def test_a_late_webhook_about_the_earlier_request_leaves_the_resubmit_alone(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    capture = django_capture_on_commit_callbacks
    monkeypatch.setattr(fake_fal, "webhook_duplicates", 2)
    fake_fal.plan_outcomes(Outcome.infra_error("runner_disconnected"), Outcome.success())
    generation = run_submit(make_generation(user), capture)
    first = generation.provider_request_id
    assert fake_fal.wait_completed(first)
    fake_fal.wait_for_webhooks(2)
    late = fake_fal.webhooks.pending.pop()  # fal's second copy, delivered later
    fake_fal.webhooks.deliver(capture)
    generation.refresh_from_db()
    assert generation.state == State.QUEUED and generation.provider_request_id == first

    # The tracker claims the retry (the first step of generation_submit) and is still waiting
    # on fal's answer to the new submit when the late copy arrives.
    assert generation_move(
        generation_id=generation.pk,
        to=State.SUBMITTING,
        actor=TRACKER,
        attempts=F("attempts") + 1,
        next_check_at=None,
    )
    fake_fal.webhooks.pending.append(late)
    (answer,) = fake_fal.webhooks.deliver(capture)

    assert answer.status_code == 204
    generation.refresh_from_db()
    assert generation.state == State.SUBMITTING and generation.attempts == 2
    retries = AuditEntry.objects.filter(
        action=AuditAction.GENERATION_RETRY, target_id=str(generation.pk)
    )
    assert retries.count() == 1, "one retry: the first copy's"


def test_news_about_the_current_request_still_moves_the_row(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    """The guard names the request: the poll of the row's own request moves it as before."""
    capture = django_capture_on_commit_callbacks
    fake_fal.plan_outcomes(Outcome.infra_error("request_timeout"))
    generation = run_submit(make_generation(user), capture)
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.webhooks.pending.clear()  # dropped: the tracker's poll finds the failure
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)
    with capture(execute=True):
        track_once()
    generation.refresh_from_db()
    assert generation.state == State.QUEUED and generation.error_code == "request_timeout"
