"""Telling an owner what a moderator decided: an email per decision (sent once the decision
commits; a decision that did not happen sends nothing), and the same words on the page
(moderation.services.moderation_notice)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

log = logging.getLogger(__name__)


def owner_tell(*, user, subject: str, lines: list[str], path: str = "") -> None:
    """Email `user` about a decision, after the caller's transaction commits."""
    if not user.email:
        return
    link = f"{settings.PUBLIC_BASE_URL}{path}" if settings.PUBLIC_BASE_URL and path else ""
    body = "\n\n".join(
        [*(line for line in lines if line), *([f"See it here: {link}"] if link else [])]
        + ["— Promptreel"]
    )
    transaction.on_commit(lambda: _send(f"Promptreel: {subject}", body, user.email))


def _send(subject: str, body: str, to: str) -> None:
    try:
        send_mail(subject, body, None, [to])
    except Exception:  # the decision stands; the page says the same
        log.exception("could not email %s about a moderation decision", to)
