"""django-q2 entry points of the desk (desk.schedules runs them)."""

from . import alerts, rollup


def dashboard_rollup() -> int:
    return len(rollup.rollup_recent())


def staff_alerts_check() -> list[str]:
    return alerts.alerts_check()
