"""django-q2 tasks of the billing app."""

from . import services


def expire_monthly() -> int:
    """Write off monthly credits whose period ended (and renew staff-given plans)."""
    return services.monthly_expire_due()
