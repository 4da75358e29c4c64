"""The tracker and the reaper: find rows whose next check is due and move each one step on.

Any number of trackers may run: a pass claims its due rows with one conditional UPDATE that
sets their next_check_at to a claim mark unique to the pass, so two trackers never work on
the same row at once. The reaper (a django-q2 schedule) is the safety net behind them.
"""

import logging
import random
import threading
import time
from concurrent.futures import Executor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from core.observability import log_context
from generation.models import Generation, State

from . import pipeline
from .lifecycle import REAPER

log = logging.getLogger(__name__)

# Long enough for one poll or submit to finish; a tracker that dies frees its rows after it.
CLAIM_LEASE = timedelta(seconds=30)
TRACKED = [State.QUEUED, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING]


# Rows a pass claims at most.
PASS_LIMIT = 200


def track_once(
    *,
    limit: int = PASS_LIMIT,
    executor: Executor | None = None,
    now: datetime | None = None,
    overdue_by: timedelta = timedelta(0),
    stop: threading.Event | None = None,
) -> int:
    """One pass over due rows; returns how many this pass claimed and stepped.

    Once `stop` is set (the tracker got SIGTERM) the claimed rows not yet stepped are handed
    back, due at once for another tracker, instead of waiting out CLAIM_LEASE."""
    now = now or timezone.now()
    cutoff = now - overdue_by
    due = list(
        Generation.objects.filter(state__in=TRACKED, next_check_at__lte=cutoff).order_by(
            "next_check_at"
        )[:limit]
    )
    if not due:
        return 0
    # The mark is later than any cutoff, so a row it was written to no longer matches another
    # tracker's claim; the random microseconds tell this pass's rows from a concurrent pass's.
    mark = now + CLAIM_LEASE + timedelta(microseconds=random.randrange(1, 10**6))
    pks = [generation.pk for generation in due]
    won = Generation.objects.filter(
        pk__in=pks, state__in=TRACKED, next_check_at__lte=cutoff
    ).update(next_check_at=mark)
    if won == len(due):
        claimed = due  # all of them, as read: no need to read them again
        for generation in claimed:
            generation.next_check_at = mark
    else:
        # Another tracker (or a webhook) took some in between: work on ours only.
        claimed = list(Generation.objects.filter(pk__in=pks, next_check_at=mark))
    if stop is not None:
        step, step_in_thread = _stoppable(_step, stop), _stoppable(_step_in_thread, stop)
    else:
        step, step_in_thread = _step, _step_in_thread
    if executor is None or len(claimed) == 1:
        for generation in claimed:
            step(generation)
    else:
        list(executor.map(step_in_thread, claimed))
    return len(claimed)


def _stoppable(step, stop: threading.Event):
    def step_unless_stopping(generation: Generation):
        if not stop.is_set():
            return step(generation)
        Generation.objects.filter(pk=generation.pk, next_check_at=generation.next_check_at).update(
            next_check_at=timezone.now()
        )
        return None

    return step_unless_stopping


def _step(generation: Generation) -> bool:
    """One step for a claimed row; False if it failed (logged, the row is retried later)."""
    with log_context(generation_id=generation.pk):
        return _step_logged(generation)


def _step_logged(generation: Generation) -> bool:
    try:
        if generation.state == State.QUEUED:
            pipeline.generation_submit(generation_id=generation.pk, generation=generation)
        elif generation.state == State.FINALIZING:
            pipeline.generation_finalize_requeue(generation=generation)
        else:
            pipeline.generation_poll(generation_id=generation.pk, generation=generation)
    except Exception:
        log.exception("tracking step for %s (%s) failed", generation.pk, generation.state)
        return False
    return True


_thread_checked = threading.local()
# Each pool thread has its own connection. Checking it costs a round trip (a health check),
# so a thread checks once per this many seconds, not once per step, and right after a step
# failed (the database may have gone away under it).
CONNECTION_CHECK_SECONDS = 5.0
NEVER = float("-inf")


def _step_in_thread(generation: Generation) -> None:
    clock = time.monotonic()
    if clock - getattr(_thread_checked, "at", NEVER) >= CONNECTION_CHECK_SECONDS:
        close_old_connections()  # drop it if it broke or outlived CONN_MAX_AGE
        _thread_checked.at = clock
    if not _step(generation):
        _thread_checked.at = NEVER


# How long a row may sit in each state (since entering it) before the reaper ends it.
STAGE_DEADLINES = {
    State.QUEUED: ("queued_at", timedelta(hours=1)),  # never got through to the provider
    # The worker died submitting, or fal's answer was lost (settings: SUBMIT_STUCK_SECONDS).
    State.SUBMITTING: ("submitting_at", timedelta(seconds=settings.SUBMIT_STUCK_SECONDS)),
    State.IN_QUEUE: ("in_queue_at", timedelta(hours=3)),  # fal never ran it
    State.IN_PROGRESS: ("in_progress_at", timedelta(hours=1)),  # fal never finished it
    State.FINALIZING: ("finalizing_at", timedelta(minutes=30)),  # we never saved the video
}
# A due check nobody took for this long means no tracker is running: the reaper does it.
REAPER_GRACE = timedelta(minutes=1)
# Rows with no check planned at all (a task lost with its broker message) are looked at after.
UNPLANNED_GRACE = timedelta(minutes=2)


def reap(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Repair rows stuck past their deadlines, so nothing stays non-terminal forever."""
    now = now or timezone.now()
    repaired = {"rechecked": 0, "requeued": 0, "failed": 0}

    # A check was lost (a task dropped with its broker message): plan one, overdue already.
    repaired["rechecked"] += Generation.objects.filter(
        state__in=TRACKED, next_check_at__isnull=True, updated_at__lt=now - UNPLANNED_GRACE
    ).update(next_check_at=now - REAPER_GRACE)
    # Checks that no tracker took: re-poll, resubmit or re-run the finalize from here.
    repaired["rechecked"] += track_once(limit=limit, now=now, overdue_by=REAPER_GRACE)

    stamp, deadline = STAGE_DEADLINES[State.SUBMITTING]
    for generation in Generation.objects.filter(
        state=State.SUBMITTING, submitting_at__lt=now - deadline
    ).order_by("submitting_at")[:limit]:
        # Its worker died or fal's answer was lost: whether fal got the request is unknown,
        # and a blind resubmit could start a second paid job (pipeline reconciles it).
        if pipeline.generation_submit_reconcile(generation=generation, now=now, actor=REAPER):
            repaired["requeued"] += 1
    for state in (State.QUEUED, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING):
        stamp, deadline = STAGE_DEADLINES[state]
        if state == State.QUEUED:  # e.g. the provider circuit stayed open (workflows.circuit)
            deadline = timedelta(seconds=settings.PROVIDER_QUEUE_TIMEOUT_SECONDS)
        for generation in Generation.objects.filter(
            state=state, **{f"{stamp}__lt": now - deadline}
        )[:limit]:
            if state in (State.IN_QUEUE, State.IN_PROGRESS):
                pipeline.generation_cancel_at_provider(generation)
            if pipeline.generation_fail(
                generation_id=generation.pk,
                code="stage_timeout",
                message=TIMEOUT_MESSAGES[state].format(deadline=_plain(deadline)),
                sources=[state],
                actor=REAPER,
            ):
                repaired["failed"] += 1
    if any(repaired.values()):
        log.warning("reaper: %s", repaired)
    return repaired


TIMEOUT_MESSAGES = {
    State.QUEUED: (
        "The job could not be sent to the provider within {deadline}. Nothing was charged: "
        "your credits are back."
    ),
    State.IN_QUEUE: "The provider did not start the job within {deadline}.",
    State.IN_PROGRESS: "The provider did not finish the job within {deadline}.",
    State.FINALIZING: "The finished video could not be saved within {deadline}.",
}


def _plain(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
