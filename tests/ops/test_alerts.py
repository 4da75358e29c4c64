"""Staff alerts: one email when a figure crosses its line, none while it stays above, one when
it falls back, and one again at the next crossing."""

import datetime as dt

import pytest
from django.utils import timezone

from desk import alerts
from desk.models import AlertState
from generation.models import State
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def lines(settings):
    settings.STAFF_ALERT_EMAILS = ["ops@example.com"]
    settings.ALERT_WINDOW_MINUTES = 30
    settings.ALERT_MIN_SAMPLES = 4
    settings.ALERT_FAILURE_RATE = 0.5
    settings.ALERT_P95_SECONDS = {"submit": 0, "queue": 60, "run": 0, "finalize": 0, "total": 0}


def ended(user, state, *, minutes_ago=1, queue_seconds=10, count=1):
    finished = timezone.now() - dt.timedelta(minutes=minutes_ago)
    for _ in range(count):
        start = finished - dt.timedelta(seconds=queue_seconds + 30)
        GenerationFactory(
            user=user,
            state=state,
            queued_at=start,
            in_queue_at=start,
            in_progress_at=start + dt.timedelta(seconds=queue_seconds),
            finished_at=finished,
            output="outputs/x.mp4" if state == State.SUCCEEDED else "",
        )


def subjects(mailoutbox):
    return [mail.subject for mail in mailoutbox]


def test_failure_rate_alerts_once_per_crossing(lines, user, mailoutbox):
    ended(user, State.SUCCEEDED, count=3)
    ended(user, State.FAILED)
    assert alerts.alerts_check() == []  # 1 of 4 failed: 25 %
    ended(user, State.FAILED, count=2)
    assert alerts.alerts_check() == []  # 3 of 6: 50 %, on the line, not above it
    ended(user, State.FAILED)
    assert alerts.alerts_check() == ["raised failure_rate"]  # 4 of 7
    assert subjects(mailoutbox) == ["[Promptreel] Alert: failure rate 57.1% (line 50.0%)"]
    assert mailoutbox[0].to == ["ops@example.com"]

    ended(user, State.FAILED, count=3)  # still above: 7 of 10
    assert alerts.alerts_check() == [] and alerts.alerts_check() == []
    assert len(mailoutbox) == 1
    assert AlertState.objects.get(key="failure_rate").raised

    ended(user, State.SUCCEEDED, count=5)  # 7 of 15: back under
    assert alerts.alerts_check() == ["recovered failure_rate"]
    assert alerts.alerts_check() == []
    assert subjects(mailoutbox)[1] == "[Promptreel] Recovered: failure rate 46.7% (line 50.0%)"

    ended(user, State.FAILED, count=2)  # 9 of 17: a new crossing
    assert alerts.alerts_check() == ["raised failure_rate"]
    assert len(mailoutbox) == 3


def test_a_stage_p95_alerts_once_and_old_rows_leave_the_window(lines, user, mailoutbox):
    ended(user, State.SUCCEEDED, count=4, queue_seconds=20)
    assert alerts.alerts_check() == []
    # Two slow ones: the p95 of six (the 6th by nearest rank) is 300 s.
    ended(user, State.SUCCEEDED, count=2, queue_seconds=300)
    assert alerts.alerts_check() == ["raised p95:queue"]
    assert alerts.alerts_check() == []
    assert subjects(mailoutbox) == ["[Promptreel] Alert: Provider queue p95 300 s (line 60 s)"]
    # An hour on, the slow ones have left the window; only fast ones ended since.
    later = timezone.now() + dt.timedelta(minutes=60)
    ended(user, State.SUCCEEDED, count=4, minutes_ago=-59, queue_seconds=20)
    assert alerts.alerts_check(now=later) == ["recovered p95:queue"]
    assert len(mailoutbox) == 2


def test_too_few_samples_keep_the_alert_as_it_is(lines, user, mailoutbox):
    ended(user, State.FAILED, count=3)  # 100 %, but only 3 of the 4 needed
    assert alerts.alerts_check() == []
    assert not AlertState.objects.filter(raised=True).exists()
    assert mailoutbox == []


def test_the_rollup_and_the_check_are_scheduled_after_migrate():
    from django_q.models import Schedule

    scheduled = dict(Schedule.objects.values_list("func", "minutes"))
    assert scheduled["desk.tasks.dashboard_rollup"] == 5
    assert scheduled["desk.tasks.staff_alerts_check"] == 1


def test_the_scheduled_tasks_run(lines, user, mailoutbox):
    from desk import tasks

    ended(user, State.FAILED, count=4)
    assert tasks.staff_alerts_check() == ["raised failure_rate"]
    assert tasks.dashboard_rollup() >= 3  # the days of the last 48 hours
