"""Periodic jobs of the moderation app (written to django-q's table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("purge old moderation prompts", "moderation.tasks.purge_old_prompts", 24 * 60),
)
