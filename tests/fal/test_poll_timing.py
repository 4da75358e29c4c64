"""The tracker polls a running fal job when jobs like it have ended, not on a fixed back-off."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from generation.models import Generation, State
from tests.factories import GenerationFactory
from workflows.tracking import track_once

from .conftest import make_generation, run_submit

pytestmark = pytest.mark.django_db


def recent_runs(user, seconds: float, count: int = 6) -> None:
    for index in range(count):
        GenerationFactory(
            user=user,
            backend="fal",
            state=State.SUCCEEDED,
            output=f"outputs/{index}.mp4",
            finished_at=timezone.now() - timedelta(minutes=index),
            inference_seconds=seconds,
        )


def statuses(fake, generation) -> int:
    return len(fake.recorded("status", request_id=generation.provider_request_id))


def test_a_running_job_is_not_polled_again_until_jobs_like_it_ended(
    fake_fal, user, django_capture_on_commit_callbacks, settings, monkeypatch
):
    settings.TRACK_POLL_DUE_SECONDS = 0.2
    settings.TRACK_POLL_LONE_SECONDS = 0  # the schedule by history, without the poll budget
    recent_runs(user, seconds=1.0)
    monkeypatch.setattr(fake_fal, "inference_time", 1.2)
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE
    Generation.objects.filter(pk=generation.pk).update(next_check_at=timezone.now())
    time.sleep(0.1)  # past the fake's queue time: running

    with django_capture_on_commit_callbacks(execute=True):
        assert track_once() == 1
    generation.refresh_from_db()
    assert generation.state == State.IN_PROGRESS
    # One run time (1 s) after it was seen running; the poll's clock is read before the call.
    likely_end = generation.in_progress_at + timedelta(seconds=1.0)
    assert timedelta(0) <= likely_end - generation.next_check_at < timedelta(seconds=0.1)
    assert statuses(fake_fal, generation) == 1

    # Passes before the likely end ask fal nothing about it.
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            assert track_once() == 0
        time.sleep(0.05)
    assert statuses(fake_fal, generation) == 1

    # From the likely end: a few quick polls find it done, and finalize copies the video.
    deadline = time.monotonic() + 10
    while generation.state != State.SUCCEEDED and time.monotonic() < deadline:
        with django_capture_on_commit_callbacks(execute=True):
            track_once()
        generation.refresh_from_db()
        time.sleep(0.02)
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert 2 <= statuses(fake_fal, generation) <= 4
