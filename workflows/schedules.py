"""Periodic jobs of the lifecycle (written to the Schedule table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("reap stuck generations", "workflows.tasks.reap", 1),
    # A kick lost with its process (workflows.notifications): the emails still go out.
    ("send outcome emails", "workflows.tasks.notify_outcomes", 1),
)
