"""The reaper: every non-terminal state has a deadline, and stuck rows are repaired."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from generation import media
from generation.models import TERMINAL, Generation, State
from workflows import pipeline, schedules, tracking

from .conftest import make_generation, run_submit

pytestmark = pytest.mark.django_db


class WorkerKilled(BaseException):
    """Stands for SIGKILL: no except clause in the product catches it."""


def test_reaper_is_scheduled_every_minute():
    assert ("reap stuck generations", "workflows.tasks.reap", 1) in schedules.SCHEDULES


def test_worker_killed_during_finalize_is_completed_by_the_reaper(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks, monkeypatch
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    fake_fal.wait_for_webhooks(1)

    # The finalize saves the video, then its worker dies before marking the row succeeded.
    real_store = media.store_video

    def store_then_die(*args, **kwargs):
        real_store(*args, **kwargs)
        raise WorkerKilled

    monkeypatch.setattr(media, "store_video", store_then_die)
    with pytest.raises(WorkerKilled):
        fake_fal.webhooks.deliver(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.FINALIZING
    monkeypatch.setattr(media, "store_video", real_store)

    # Within the lease the reaper leaves it alone: the finalize might still be running.
    with django_capture_on_commit_callbacks(execute=True):
        tracking.reap()
    generation.refresh_from_db()
    assert generation.state == State.FINALIZING

    later = timezone.now() + pipeline.FINALIZE_LEASE + tracking.REAPER_GRACE
    with django_capture_on_commit_callbacks(execute=True):
        repaired = tracking.reap(now=later)
    assert repaired["rechecked"] == 1
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert default_storage.listdir(f"outputs/{user.pk}")[1] == [f"{generation.pk}.mp4"]
    assert default_storage.listdir(f"posters/{user.pk}")[1] == [f"{generation.pk}.jpg"]
    assert len(fake_fal.submits()) == 1


def test_reaper_repolls_when_no_tracker_runs(fake_fal, user, django_capture_on_commit_callbacks):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    later = timezone.now() + tracking.REAPER_GRACE + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True):
        tracking.reap(now=later)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


def test_reaper_resubmits_a_lost_submit_task(fake_fal, user, django_capture_on_commit_callbacks):
    generation = make_generation(user)  # queued, its submit task lost with the broker
    Generation.objects.filter(pk=generation.pk).update(
        updated_at=timezone.now() - tracking.UNPLANNED_GRACE - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        tracking.reap()
    generation.refresh_from_db()
    assert generation.state == State.IN_QUEUE
    assert len(fake_fal.submits()) == 1


def test_a_submit_whose_worker_died_is_sent_again_only_once_fal_cannot_have_it(
    fake_fal, with_webhooks, user, settings
):
    """The worker may have died after its POST reached fal: a resubmit could start a second
    paid job, so the row waits for the webhook naming its attempt until the reconcile
    deadline (tests/fal/test_submit_reconcile.py), and only then is it sent again."""
    generation = make_generation(user, state=State.SUBMITTING, attempts=1, submit_token="a" * 32)
    rows = Generation.objects.filter(pk=generation.pk)
    rows.update(submitting_at=timezone.now() - timedelta(minutes=6))
    assert tracking.reap()["requeued"] == 0
    generation.refresh_from_db()
    assert generation.state == State.SUBMITTING
    rows.update(
        submitting_at=timezone.now()
        - timedelta(seconds=settings.FAL_SUBMIT_RECONCILE_SECONDS, minutes=1)
    )
    assert tracking.reap()["requeued"] == 1
    generation.refresh_from_db()
    assert generation.state == State.QUEUED and generation.error_code == "submit_unconfirmed"
    assert generation.next_check_at is not None
    assert fake_fal.submits() == []


def test_without_a_webhook_a_submit_whose_worker_died_fails_unbilled(fake_fal, user):
    generation = make_generation(user, state=State.SUBMITTING, attempts=1)
    Generation.objects.filter(pk=generation.pk).update(
        submitting_at=timezone.now() - timedelta(minutes=6)
    )
    tracking.reap()
    generation.refresh_from_db()
    assert generation.state == State.FAILED and generation.error_code == "submit_unconfirmed"
    assert "Nothing was charged" in generation.error_message
    assert fake_fal.submits() == []


@pytest.mark.parametrize(
    ("state", "stamp"),
    [
        (State.QUEUED, "queued_at"),
        (State.IN_QUEUE, "in_queue_at"),
        (State.IN_PROGRESS, "in_progress_at"),
        (State.FINALIZING, "finalizing_at"),
    ],
)
def test_every_stage_has_a_deadline(fake_fal, user, state, stamp, monkeypatch):
    monkeypatch.setattr(fake_fal, "queue_time", 3600)
    generation = make_generation(user, state=state, provider_request_id=f"gone-{state}")
    _, deadline = tracking.STAGE_DEADLINES[state]
    Generation.objects.filter(pk=generation.pk).update(
        **{stamp: timezone.now() - deadline - timedelta(seconds=1)}, next_check_at=None
    )
    assert tracking.reap()["failed"] == 1
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.error_code == "stage_timeout"
    assert "within" in generation.error_message


def test_nothing_stays_non_terminal_forever(fake_fal, user, monkeypatch):
    """Whatever state a row is stuck in, repeated reaper runs end it."""
    monkeypatch.setattr(fake_fal, "queue_time", float("inf"))
    monkeypatch.setattr(pipeline, "retry_delay", lambda attempt: timedelta(0))
    stuck = [
        make_generation(user, state=state, provider_request_id=f"stuck-{index}")
        for index, state in enumerate(
            [State.QUEUED, State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING]
        )
    ]
    now = timezone.now()
    for _ in range(12):
        now += timedelta(hours=1)
        tracking.reap(now=now)
        Generation.objects.exclude(state__in=TERMINAL).update(
            queued_at=now - timedelta(hours=2),
            submitting_at=now - timedelta(hours=2),
            in_queue_at=now - timedelta(hours=4),
            in_progress_at=now - timedelta(hours=2),
            finalizing_at=now - timedelta(hours=2),
        )
    states = set(
        Generation.objects.filter(pk__in=[g.pk for g in stuck]).values_list("state", flat=True)
    )
    assert states == {State.FAILED}


def test_a_finalize_waiting_in_a_backlog_is_not_queued_again_behind_it(
    fake_fal, with_webhooks, user, django_capture_on_commit_callbacks
):
    """A queued finalize holds the row for FINALIZE_QUEUED, not the running lease: re-queued
    after 30 s it went to the back of the queue, and a backlog of seconds became minutes."""
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert fake_fal.wait_completed(generation.provider_request_id)
    fake_fal.wait_for_webhooks(1)
    url, headers, body = fake_fal.webhooks.pending.pop()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        fake_fal.webhooks.post(headers, body, url)  # the finalize is queued, not yet run
    assert len(queued) == 1
    generation.refresh_from_db()
    assert generation.state == State.FINALIZING
    lease = generation.next_check_at

    past_running_lease = timezone.now() + pipeline.FINALIZE_LEASE + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=False) as requeued:
        assert tracking.track_once(now=past_running_lease) == 0
    assert requeued == []
    generation.refresh_from_db()
    assert generation.next_check_at == lease

    lost = timezone.now() + pipeline.FINALIZE_QUEUED + timedelta(seconds=1)
    with django_capture_on_commit_callbacks(execute=True) as requeued:
        assert tracking.track_once(now=lost) == 1
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    # The first task, run late, finds the lease taken over and does nothing.
    assert not pipeline.generation_finalize(generation_id=generation.pk, lease=lease)
