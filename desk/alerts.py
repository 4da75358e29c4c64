"""Email staff when the failure rate or a stage's p95 crosses its line (settings ALERT_*).

Checked every minute (desk.schedules) over the generations that ended in the last
ALERT_WINDOW_MINUTES. Each alert has an AlertState row; the check raises or clears it with a
conditional UPDATE and mails only when that UPDATE changed the row, so staff get one email
when a figure crosses its line, none while it stays above, and one when it falls back.
"""

import datetime as dt

from django.conf import settings
from django.utils import timezone

from core.alerts import staff_alert
from generation.models import Generation, State
from generation.stages import STAGE_LABELS, TIMING_COLUMNS, percentile, stage_durations

from .models import AlertState

FAILURE_RATE = "failure_rate"


def alert_figures(*, now: dt.datetime) -> dict[str, tuple[float | None, float, int]]:
    """key -> (figure, its line, samples) for every alert with a line; figure None when fewer
    than ALERT_MIN_SAMPLES generations stand behind it (too few to judge)."""
    since = now - dt.timedelta(minutes=settings.ALERT_WINDOW_MINUTES)
    rows = list(Generation.objects.filter(finished_at__gte=since).values_list(*TIMING_COLUMNS))
    enough = settings.ALERT_MIN_SAMPLES
    figures = {}
    if settings.ALERT_FAILURE_RATE > 0:
        failed = sum(1 for row in rows if row[0] == State.FAILED)
        ended = failed + sum(1 for row in rows if row[0] == State.SUCCEEDED)
        rate = failed / ended if ended and ended >= enough else None
        figures[FAILURE_RATE] = (rate, settings.ALERT_FAILURE_RATE, ended)
    for stage, values in stage_durations(rows).items():
        line = settings.ALERT_P95_SECONDS.get(stage, 0)
        if line > 0:
            p95 = percentile(values, 95) if values and len(values) >= enough else None
            figures[f"p95:{stage}"] = (p95, line, len(values))
    return figures


def _describe(key: str, value: float, line: float) -> str:
    if key == FAILURE_RATE:
        return f"failure rate {value:.1%} (line {line:.1%})"
    stage = STAGE_LABELS[key.removeprefix("p95:")]
    return f"{stage} p95 {value:.0f} s (line {line:.0f} s)"


def alerts_check(*, now: dt.datetime | None = None) -> list[str]:
    """Raise or clear each alert; returns what it mailed ("raised failure_rate", …)."""
    now = now or timezone.now()
    window = settings.ALERT_WINDOW_MINUTES
    sent = []
    for key, (value, line, samples) in alert_figures(now=now).items():
        if value is None:
            continue  # too few samples: the alert stays as it is
        above = value > line
        AlertState.objects.get_or_create(key=key)
        moved = AlertState.objects.filter(key=key, raised=not above).update(
            raised=above, value=value, changed_at=now
        )
        if not moved:
            continue  # already raised (or already clear): nothing new to say
        what = _describe(key, value, line)
        if above:
            staff_alert(
                subject=f"Alert: {what}",
                message=(
                    f"Over the {samples} generations that ended in the last {window} minutes, "
                    f"the {what}.\nThe dashboard: /admin/dashboard/\n"
                    "You will get one more email when it falls back below the line."
                ),
            )
        else:
            staff_alert(
                subject=f"Recovered: {what}",
                message=f"Over the last {window} minutes ({samples} generations): {what}.\n",
            )
        sent.append(f"{'raised' if above else 'recovered'} {key}")
    return sent
