"""Telling a creator by email that their video is ready, or could not be made.

An effect of the move (workflows.lifecycle.generation_move) into `succeeded` or `failed`: the
move queues `workflows.tasks.notify_outcome` when its transaction commits, so a move that
rolled back sends nothing and the request or worker that made it never waits on SMTP. The task
claims the clip with one conditional UPDATE of `owner_notified_at` before sending, so a task
run twice (a retried django-q task) or a second move cannot send a second email: at most one
email per clip. Sent for clips made on the site, when the owner's setting
(`User.notify_by_email`, on by default, on /account/settings/) allows; API clients are told
by their webhooks instead. A clip approved out of a moderator's hold is not announced here:
the decision email (workflows.review) already says it is ready.
"""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.queueing import enqueue
from generation.models import Generation, State

log = logging.getLogger(__name__)

ANNOUNCED_OUTCOMES = frozenset({State.SUCCEEDED, State.FAILED})


def outcome_notice_queue(*, generation_id) -> None:
    """Call inside the move's transaction: the email task is queued once it commits."""
    transaction.on_commit(
        lambda: enqueue(
            "workflows.tasks.notify_outcome",
            str(generation_id),
            task_name=f"notify {generation_id}",
        )
    )


def generation_outcome_notify(*, generation_id) -> bool:
    """Email the owner that the clip is ready or failed, once; True if this call sent it."""
    generation = (
        Generation.objects.select_related("user")
        .filter(pk=generation_id, state__in=ANNOUNCED_OUTCOMES)
        .first()
    )
    if generation is None or generation.api_key_id is not None:
        return False
    user = generation.user
    if not (user.notify_by_email and user.email and user.is_active):
        return False
    claimed = Generation.objects.filter(pk=generation.pk, owner_notified_at__isnull=True).update(
        owner_notified_at=timezone.now()
    )
    if not claimed:
        return False  # told already
    ready = generation.state == State.SUCCEEDED
    link = (
        f"{settings.PUBLIC_BASE_URL}{generation.get_absolute_url()}"
        if settings.PUBLIC_BASE_URL
        else ""
    )
    context = {"g": generation, "ready": ready, "link": link, "site_name": settings.SITE_NAME}
    subject = (
        f"{settings.SITE_NAME}: your video is ready"
        if ready
        else f"{settings.SITE_NAME}: your video could not be made"
    )
    try:
        send_mail(
            subject,
            render_to_string("generation/email/outcome.txt", context),
            None,
            [user.email],
        )
    except Exception:  # the clip is what it is; the page says the same
        log.exception("could not email %s about generation %s", user.email, generation.pk)
        return False
    return True
