"""Periodic jobs of the lifecycle (written to the Schedule table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("reap stuck generations", "workflows.tasks.reap", 1),
)
