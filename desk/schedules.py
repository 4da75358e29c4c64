"""Periodic jobs of the staff dashboard (written to the Schedule table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("dashboard rollup", "desk.tasks.dashboard_rollup", 5),
    ("staff alerts", "desk.tasks.staff_alerts_check", 1),
)
