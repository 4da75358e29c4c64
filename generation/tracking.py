"""The tracker: finds rows whose next check is due and moves each one step on.

Any number of trackers may run: each row is claimed with a conditional UPDATE of its
next_check_at before it is touched, so two trackers never work on the same row at once.
"""

import logging
from concurrent.futures import Executor
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone

from . import pipeline
from .models import Generation, State

log = logging.getLogger(__name__)

# Long enough for one poll or submit to finish; a tracker that dies frees its rows after it.
CLAIM_LEASE = timedelta(seconds=30)
TRACKED = [State.QUEUED, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING]


def track_once(*, limit: int = 200, executor: Executor | None = None) -> int:
    """One pass over due rows; returns how many this tracker claimed."""
    now = timezone.now()
    due = (
        Generation.objects.filter(state__in=TRACKED, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", "state", "next_check_at")[:limit]
    )
    claimed = []
    for pk, state, due_at in due:
        won = Generation.objects.filter(pk=pk, state=state, next_check_at=due_at).update(
            next_check_at=now + CLAIM_LEASE
        )
        if won:
            claimed.append((pk, state))
    if executor is None:
        for pk, state in claimed:
            _step(pk, state)
    else:
        list(executor.map(_step_in_thread, claimed))
    return len(claimed)


def _step(pk, state: str) -> None:
    try:
        if state == State.QUEUED:
            pipeline.generation_submit(generation_id=pk)
        elif state == State.FINALIZING:
            pipeline.enqueue_finalize(pk)
        else:
            pipeline.generation_poll(generation_id=pk)
    except Exception:
        log.exception("tracking step for %s (%s) failed", pk, state)


def _step_in_thread(item) -> None:
    # Each pool thread has its own connection; drop it if it broke or outlived CONN_MAX_AGE.
    close_old_connections()
    _step(*item)


# How long a row may sit in each state before the reaper steps in.
STAGE_DEADLINES = {
    State.QUEUED: timedelta(minutes=5),  # the submit task was lost
    State.SUBMITTING: timedelta(minutes=10),  # the worker died during submit
    State.IN_QUEUE: timedelta(hours=3),  # fal never ran it
    State.IN_PROGRESS: timedelta(hours=1),  # fal never finished it
}


def reap(*, now=None) -> dict[str, int]:
    """Repair rows stuck past their stage deadline, so nothing stays non-terminal forever."""
    now = now or timezone.now()
    repaired = {"requeued": 0, "rechecked": 0, "failed": 0}
    # Lost tasks and lost tracker schedules: make the tracker look again now.
    repaired["rechecked"] += Generation.objects.filter(
        state__in=TRACKED, next_check_at__isnull=True, updated_at__lt=now - timedelta(minutes=2)
    ).update(next_check_at=now)
    for generation in Generation.objects.filter(
        state=State.SUBMITTING, submitting_at__lt=now - STAGE_DEADLINES[State.SUBMITTING]
    ):
        if pipeline.generation_retry_or_fail(
            generation_id=generation.pk,
            code="submit_lost",
            message="The submission never finished.",
        ):
            repaired["requeued"] += 1
    for state, stamp in ((State.IN_QUEUE, "in_queue_at"), (State.IN_PROGRESS, "in_progress_at")):
        for generation in Generation.objects.filter(
            **{"state": state, f"{stamp}__lt": now - STAGE_DEADLINES[state]}
        ):
            pipeline.generation_cancel_at_provider(generation)
            if pipeline.generation_fail(
                generation_id=generation.pk,
                code="provider_timeout",
                message=f"The provider did not finish within {STAGE_DEADLINES[state]}.",
            ):
                repaired["failed"] += 1
    return repaired
