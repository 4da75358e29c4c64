"""Periodic jobs of the REST API (written to the Schedule table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("prune API idempotency keys", "restapi.tasks.prune_idempotency_keys", 60),
)
