"""Periodic jobs of the generation core (written to the Schedule table by core.schedules)."""

SCHEDULES = (
    # (name, function, minutes between runs)
    ("clean up media", "generation.retention.cleanup", 60),
)
