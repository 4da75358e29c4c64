"""Periodic jobs of the billing app (see core/schedules.py)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("expire monthly credits", "billing.tasks.expire_monthly", 10),
    ("repair plan-limit counters", "billing.holds.counters_repair", 10),
)
