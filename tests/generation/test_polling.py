"""When the tracker polls: back-off at first, then at the likely end of the job, then often."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generation import polling
from generation.models import State
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db


def finished_runs(user, seconds: list[float], **fields):
    now = timezone.now()
    for index, inference in enumerate(seconds):
        GenerationFactory(
            user=user,
            state=State.SUCCEEDED,
            output=f"outputs/{index}.mp4",
            finished_at=now - timedelta(minutes=index),
            inference_seconds=inference,
            **fields,
        )


@pytest.fixture
def poll_settings(settings):
    settings.TRACK_POLL_MIN_SECONDS = 0.5
    settings.TRACK_POLL_MAX_SECONDS = 5.0
    settings.TRACK_POLL_DUE_SECONDS = 2.0
    settings.TRACK_POLL_WITH_WEBHOOK_SECONDS = 15.0
    settings.TRACK_POLL_LONE_SECONDS = 0  # the schedule itself; the budget is tested below
    return settings


def test_typical_run_time_is_the_tenth_percentile_of_recent_successes(user):
    finished_runs(user, [20.0 + index for index in range(10)])  # 20 … 29 s
    job = GenerationFactory(user=user)
    assert polling.typical_run_seconds(job) == 21.0


def test_too_few_runs_give_no_typical_time(user):
    finished_runs(user, [20.0] * (polling.TYPICAL_MIN_SAMPLE - 1))
    assert polling.typical_run_seconds(GenerationFactory(user=user)) is None


def test_only_runs_of_the_same_kind_count(user, other_user):
    finished_runs(user, [60.0] * 6, resolution="1080p")
    finished_runs(user, [90.0] * 6, duration=10)
    finished_runs(other_user, [40.0] * 6, endpoint_id="fal-ai/pika/v2.1/text-to-video")
    for _ in range(6):
        GenerationFactory(user=user, state=State.FAILED, inference_seconds=1.0)
    assert polling.typical_run_seconds(GenerationFactory(user=user)) is None
    finished_runs(other_user, [30.0] * 6)  # any user's runs of this kind tell the same
    polling.forget_typical_run_times()
    assert polling.typical_run_seconds(GenerationFactory(user=user)) == 30.0


def test_the_figure_is_kept_for_a_while_per_process(user, django_assert_num_queries):
    finished_runs(user, [20.0] * 6)
    job = GenerationFactory(user=user)
    assert polling.typical_run_seconds(job) == 20.0
    with django_assert_num_queries(0):
        assert polling.typical_run_seconds(job) == 20.0


def test_queued_jobs_and_jobs_without_history_back_off(user, poll_settings):
    job = GenerationFactory(user=user, state=State.IN_PROGRESS, polls=2)
    now = timezone.now()
    for stage in ("in_queue", "in_progress"):
        at = polling.next_poll_at(job, stage=stage, now=now, started_at=now, webhook=False)
        assert at == now + timedelta(seconds=0.5 * 1.5**3)
    finished_runs(user, [20.0] * 6)
    at = polling.next_poll_at(job, stage="in_queue", now=now, started_at=now, webhook=False)
    assert at == now + timedelta(seconds=0.5 * 1.5**3), "the queue position stays live"


def test_a_running_job_is_next_polled_when_jobs_like_it_ended(user, poll_settings):
    finished_runs(user, [20.0] * 6)
    job = GenerationFactory(user=user, state=State.IN_PROGRESS, polls=1)
    now = timezone.now()
    started = now - timedelta(seconds=3)
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=started, webhook=False)
    assert at == started + timedelta(seconds=20)


def test_past_its_likely_end_a_job_is_polled_often_then_less_as_it_overruns(user, poll_settings):
    finished_runs(user, [20.0] * 6)
    job = GenerationFactory(user=user, state=State.IN_PROGRESS, polls=5)
    now = timezone.now()

    def pause_after(overrun: float) -> float:
        started = now - timedelta(seconds=20 + overrun)
        at = polling.next_poll_at(
            job, stage="in_progress", now=now, started_at=started, webhook=False
        )
        return (at - now).total_seconds()

    assert pause_after(1) == 2.0
    assert pause_after(50) == pytest.approx(5.0)
    assert pause_after(3600) == polling.OVERRUN_CAP_SECONDS


def test_with_a_webhook_coming_the_poll_is_only_a_safety_net(user, poll_settings):
    job = GenerationFactory(user=user, state=State.IN_PROGRESS, polls=1)
    now = timezone.now()
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=now, webhook=True)
    assert at == now + timedelta(seconds=15), "no history: the safety-net interval"
    at = polling.next_poll_at(job, stage="in_queue", now=now, started_at=None, webhook=True)
    assert at == now + timedelta(seconds=0.5 * 4 * 1.5**2), "the queue position stays live"

    finished_runs(user, [20.0] * 6)
    polling.forget_typical_run_times()
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=now, webhook=True)
    assert at == now + timedelta(seconds=20 + 15), "after the likely end, plus the net"
    overdue = now - timedelta(seconds=300)
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=overdue, webhook=True)
    assert at == now + timedelta(seconds=15), "never in the past"


def test_retry_delay_backs_off_exponentially_with_jitter():
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, polling.RETRY_CAP_SECONDS)]:
        for _ in range(20):
            seconds = polling.retry_delay(attempt).total_seconds()
            assert ceiling / 2 <= seconds <= ceiling


@pytest.fixture
def budget(poll_settings):
    poll_settings.TRACK_POLL_LONE_SECONDS = 0.75
    poll_settings.TRACK_POLL_BUDGET_PER_SECOND = 20.0
    return poll_settings


def _running(user, *, seconds_ago: float = 1.0, polls: int = 10):
    """A job seen running a while ago, polled often enough that its back-off is at the cap."""
    started = timezone.now() - timedelta(seconds=seconds_ago)
    job = GenerationFactory(user=user, state=State.IN_PROGRESS, in_progress_at=started, polls=polls)
    return job, started


def test_a_lone_job_is_polled_often_whatever_its_history_says(user, budget):
    finished_runs(user, [60.0] * 6)  # jobs like it ran a minute
    job, started = _running(user)
    now = timezone.now()
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=started, webhook=False)
    assert at == now + timedelta(seconds=0.75), "not at started + 60 s"
    queued = GenerationFactory(user=user, state=State.IN_QUEUE, polls=10)
    at = polling.next_poll_at(queued, stage="in_queue", now=now, started_at=None, webhook=False)
    assert at == now + timedelta(seconds=0.75), "not after the 5 s back-off"


def test_with_many_in_flight_each_gets_its_share_of_the_budget(user, budget):
    for _ in range(39):
        GenerationFactory(user=user, state=State.IN_QUEUE)
    job, started = _running(user)  # 40 in flight: 20 polls a second, 2 s each
    now = timezone.now()
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=started, webhook=False)
    assert at == now + timedelta(seconds=2.0)
    # A plan sooner than the budget's is kept.
    fresh, started = _running(user, polls=0)
    at = polling.next_poll_at(
        fresh, stage="in_progress", now=now, started_at=started, webhook=False
    )
    assert at == now + polling.poll_delay(1)


def test_the_in_flight_count_is_one_query_per_while(user, budget, django_assert_num_queries):
    GenerationFactory(user=user, state=State.IN_QUEUE)
    with django_assert_num_queries(1):
        assert polling.in_flight_count() == 1
        GenerationFactory.build(user=user)
        assert polling.in_flight_count() == 1


def test_with_a_webhook_coming_the_budget_does_not_apply(user, budget):
    job, started = _running(user)
    now = timezone.now()
    at = polling.next_poll_at(job, stage="in_progress", now=now, started_at=started, webhook=True)
    assert at == now + timedelta(seconds=15.0)
