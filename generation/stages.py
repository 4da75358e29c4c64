"""The stages of a generation's life that staff time, from the timestamps its row keeps
(generation.models.STAGE_TIMESTAMP). The dashboard (desk.rollup), the alerts (desk.alerts) and
the stage histogram of /metrics (workflows.lifecycle) all measure them here, one way."""

import math

from .models import State

# (key, label, start column, end column, succeeded only)
STAGES = (
    ("submit", "Wait for submit", "queued_at", "in_queue_at", False),
    ("queue", "Provider queue", "in_queue_at", "in_progress_at", False),
    ("run", "Provider run", "in_progress_at", "finalizing_at", False),
    ("finalize", "Copy and finalize", "finalizing_at", "finished_at", True),
    ("total", "End to end", "created_at", "finished_at", True),
)
STAGE_LABELS = {key: label for key, label, *_ in STAGES}
# The columns stage_durations reads, in this order (values_list(*TIMING_COLUMNS)).
TIMING_COLUMNS = (
    "state",
    "created_at",
    "queued_at",
    "in_queue_at",
    "in_progress_at",
    "finalizing_at",
    "finished_at",
)
_INDEX = {name: i for i, name in enumerate(TIMING_COLUMNS)}


def row_stages(row) -> dict[str, float]:
    """Seconds spent in each stage the row (TIMING_COLUMNS) went through."""
    seconds = {}
    for key, _label, start, end, succeeded_only in STAGES:
        if succeeded_only and row[0] != State.SUCCEEDED:
            continue
        began, ended = row[_INDEX[start]], row[_INDEX[end]]
        if began is not None and ended is not None and ended >= began:
            seconds[key] = (ended - began).total_seconds()
    return seconds


def stage_durations(rows) -> dict[str, list[float]]:
    """Every stage's durations over rows of TIMING_COLUMNS (a stage not reached: skipped)."""
    durations: dict[str, list[float]] = {key: [] for key, *_ in STAGES}
    for row in rows:
        for key, seconds in row_stages(row).items():
            durations[key].append(seconds)
    return durations


def percentile(values: list[float], p: int) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered) / 100), 1) - 1]
