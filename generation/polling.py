"""When to ask the provider again: back-off for retries, and polls timed to the job's likely end.

A poll costs a provider call and a write, so the tracker asks when an answer is likely to have
changed: often at first (the queue position and the start show up live), then not again until
the job is about as old as recent jobs of its kind took, then every few seconds until it ends.

That saving only matters when many jobs are in flight. With few, polls are cheap and a late
one is a wait the user feels, so without a webhook no job waits longer than its share of a
poll budget (TRACK_POLL_BUDGET_PER_SECOND spread over the jobs in flight), and never longer
than TRACK_POLL_LONE_SECONDS when alone: a lone job is seen done within about that.
"""

import random
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings

from .models import Generation, State

RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 120.0
# With a webhook expected, the first poll only has to show the queue position: 4× later.
WEBHOOK_FIRST_POLL_FACTOR = 4
# How many recent jobs of a kind make its typical run time, how few are too few to trust,
# and how long a process keeps the figure before it looks again.
TYPICAL_SAMPLE = 50
TYPICAL_MIN_SAMPLE = 5
TYPICAL_TTL_SECONDS = 30.0
# Past the likely end, the pause grows with the overrun (a tenth of it), so a job that runs
# far longer than usual is not polled every few seconds for minutes.
OVERRUN_FRACTION = 0.1
OVERRUN_CAP_SECONDS = 15.0
# How long a process keeps its count of jobs in flight (the poll budget's denominator).
IN_FLIGHT_TTL_SECONDS = 2.0


def retry_delay(attempt: int) -> timedelta:
    """Exponential back-off with full jitter, so that failures do not retry in lock-step."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def poll_delay(polls: int, *, webhook: bool = False) -> timedelta:
    """Back-off when nothing better is known: often at first, then less often.

    With a webhook on its way, polls only keep the queue position fresh and catch a webhook
    that never came, so they back off further.
    """
    if webhook:
        first = settings.TRACK_POLL_MIN_SECONDS * WEBHOOK_FIRST_POLL_FACTOR
        cap = settings.TRACK_POLL_WITH_WEBHOOK_SECONDS
    else:
        first, cap = settings.TRACK_POLL_MIN_SECONDS, settings.TRACK_POLL_MAX_SECONDS
    seconds = first * 1.5 ** min(polls, 20)
    return timedelta(seconds=min(seconds, cap))


def next_poll_at(
    generation: Generation, *, stage: str, now: datetime, started_at: datetime | None, webhook: bool
) -> datetime:
    """When to poll a job that the provider reports at `stage` ('in_queue' or 'in_progress')."""
    planned = _planned_poll_at(
        generation, stage=stage, now=now, started_at=started_at, webhook=webhook
    )
    interval = None if webhook else budget_interval()
    return planned if interval is None else min(planned, now + interval)


def budget_interval() -> timedelta | None:
    """The longest a job may go unpolled for the poll budget: TRACK_POLL_LONE_SECONDS, or
    more when more jobs are in flight than the budget polls that often. None when the budget
    is off (TRACK_POLL_LONE_SECONDS = 0)."""
    lone = settings.TRACK_POLL_LONE_SECONDS
    if lone <= 0:
        return None
    share = in_flight_count() / max(settings.TRACK_POLL_BUDGET_PER_SECOND, 0.001)
    return timedelta(seconds=max(lone, share))


_in_flight: list[tuple[float, int]] = []


def in_flight_count() -> int:
    """Jobs at the provider (in its queue or running), counted at most every
    IN_FLIGHT_TTL_SECONDS per process: one indexed count, not one per poll."""
    clock = time.monotonic()
    with _typical_lock:
        if _in_flight and clock - _in_flight[0][0] < IN_FLIGHT_TTL_SECONDS:
            return _in_flight[0][1]
    count = Generation.objects.filter(state__in=[State.IN_QUEUE, State.IN_PROGRESS]).count()
    with _typical_lock:
        _in_flight[:] = [(clock, count)]
    return count


def _planned_poll_at(
    generation: Generation, *, stage: str, now: datetime, started_at: datetime | None, webhook: bool
) -> datetime:
    typical = typical_run_seconds(generation) if stage == "in_progress" else None
    if stage == "in_progress" and webhook:
        # The webhook reports the end; a poll is only the safety net for one that never came.
        safety_net = timedelta(seconds=settings.TRACK_POLL_WITH_WEBHOOK_SECONDS)
        if typical is None:
            return now + safety_net
        return max(now, (started_at or now) + timedelta(seconds=typical)) + safety_net
    backoff = now + poll_delay(generation.polls + 1, webhook=webhook)
    if typical is None:
        return backoff
    likely_end = (started_at or now) + timedelta(seconds=typical)
    if now < likely_end:
        return likely_end
    overrun = (now - likely_end).total_seconds()
    pause = min(
        max(settings.TRACK_POLL_DUE_SECONDS, OVERRUN_FRACTION * overrun), OVERRUN_CAP_SECONDS
    )
    return now + timedelta(seconds=pause)


_typical: dict[tuple, tuple[float, float | None]] = {}
_typical_lock = threading.Lock()


def typical_run_seconds(generation: Generation) -> float | None:
    """A short run time for jobs like this one (same endpoint, resolution and duration): the
    10th percentile of the provider's inference time over recent successes. None while too
    few have finished. Looked up at most every TYPICAL_TTL_SECONDS per process."""
    key = (generation.endpoint_id, generation.resolution, generation.duration)
    clock = time.monotonic()
    with _typical_lock:
        cached = _typical.get(key)
    if cached is not None and clock - cached[0] < TYPICAL_TTL_SECONDS:
        return cached[1]
    recent = sorted(
        Generation.objects.filter(
            endpoint_id=generation.endpoint_id,
            resolution=generation.resolution,
            duration=generation.duration,
            state=State.SUCCEEDED,
            inference_seconds__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("inference_seconds", flat=True)[:TYPICAL_SAMPLE]
    )
    value = recent[len(recent) // 10] if len(recent) >= TYPICAL_MIN_SAMPLE else None
    with _typical_lock:
        _typical[key] = (clock, value)
    return value


def forget_typical_run_times() -> None:
    """Drop the per-process figures (tests start from an empty history)."""
    with _typical_lock:
        _typical.clear()
        _in_flight.clear()
