"""Email to staff when something needs a person (a provider outage, a failure rate)."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail

log = logging.getLogger(__name__)


def staff_alert_recipients() -> list[str]:
    if settings.STAFF_ALERT_EMAILS:
        return list(settings.STAFF_ALERT_EMAILS)
    users = get_user_model().objects.filter(is_superuser=True, is_active=True)
    return sorted({email for email in users.values_list("email", flat=True) if email})


def staff_alert(*, subject: str, message: str) -> int:
    """Send one alert; returns how many it went to. Never raises: an alert that cannot be sent
    is logged, and the work that raised it goes on."""
    recipients = staff_alert_recipients()
    log.warning("staff alert: %s", subject)
    if not recipients:
        return 0
    try:
        send_mail(f"[Promptreel] {subject}", message, None, recipients)
    except Exception:
        log.exception("could not send the staff alert %r", subject)
        return 0
    return len(recipients)
