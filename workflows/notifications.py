"""Telling creators by email that their videos are ready, or could not be made.

An effect of the move (workflows.lifecycle.generation_move) into `succeeded` or `failed`. The
move does not queue a task per clip: when it commits it "kicks" the sender, and only the first
kick since the sender last ran queues `workflows.tasks.notify_outcomes` (a cache key is the
gate). The sender opens the gate before it reads, then sends every clip that ended and is not
yet announced, one email per owner (a digest when several of theirs ended meanwhile) over one
SMTP connection. So a quiet site emails within a moment of the move, and a busy one (1000 clips
in flight, benchmarks/README.md) sends a task's worth of emails per task instead of a task per
clip. A kick lost with its process (between the gate and the queue) is covered by the minute
schedule (workflows.schedules), which runs the same sender.

Each clip is claimed with one conditional UPDATE of `owner_notified_at` before its email is
built, so two senders at once, a retried task or a second move never email a clip twice. A
move that rolls back kicks nothing. Sent for clips made on the site when the owner's setting
(`User.notify_by_email`, on by default, /account/settings/) allows; API clients are told by
their webhooks instead. A clip approved out of a moderator's hold is marked announced by its
move: the decision email (workflows.review) already says it is ready.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core.queueing import enqueue
from generation.models import Generation, State

log = logging.getLogger(__name__)

ANNOUNCED_OUTCOMES = frozenset({State.SUCCEEDED, State.FAILED})
# Clips that ended longer ago are never announced (after an outage of the sender, a deploy, or
# a setting switched back on, a stale "your video is ready" would only confuse).
NOTICE_WINDOW = timedelta(days=1)
KICK_KEY = "workflows:outcome-notice-kick"
# A gate left shut by a process that died between the gate and the queue opens again by
# itself; the minute schedule sends what was pending meanwhile.
KICK_TIMEOUT_SECONDS = 300
BATCH = 200


def outcome_notice_queue(*, generation_id) -> None:
    """Call inside the move's transaction: the sender is kicked once it commits."""
    transaction.on_commit(outcome_notice_kick)


def outcome_notice_kick() -> None:
    """Queue the sender unless a kick since its last run has queued it already."""
    if cache.add(KICK_KEY, 1, timeout=KICK_TIMEOUT_SECONDS):
        enqueue("workflows.tasks.notify_outcomes", task_name="notify outcomes", save=False)


def outcome_notice_forget() -> None:
    """Open the gate (tests: no kick state from another test)."""
    cache.delete(KICK_KEY)


def outcomes_notify() -> int:
    """Email every owner whose clips ended and are not yet announced; returns emails sent."""
    # Opened before reading: a clip committed from here on kicks again, one committed before
    # is read below.
    outcome_notice_forget()
    sent = 0
    while True:
        claimed = _claim_pending()
        if claimed is None:
            return sent
        sent += _send(claimed)


def _claim_pending() -> list[Generation] | None:
    """Up to BATCH ended clips no sender has claimed, now claimed by this one (None: none
    pending). Clips whose owner does not want the email are claimed too, and not sent."""
    pending = list(
        Generation.objects.filter(
            state__in=ANNOUNCED_OUTCOMES,
            owner_notified_at__isnull=True,
            api_key__isnull=True,
            finished_at__gte=timezone.now() - NOTICE_WINDOW,
        )
        .select_related("user")
        .only(
            "pk",
            "state",
            "prompt",
            "error_message",
            "finished_at",
            "user__email",
            "user__is_active",
            "user__notify_by_email",
        )
        .order_by("finished_at")[:BATCH]
    )
    if not pending:
        return None
    now = timezone.now()
    return [
        generation
        for generation in pending
        if Generation.objects.filter(pk=generation.pk, owner_notified_at__isnull=True).update(
            owner_notified_at=now
        )
    ]


def _send(claimed: list[Generation]) -> int:
    by_owner = defaultdict(list)
    for generation in claimed:
        user = generation.user
        if user.notify_by_email and user.email and user.is_active:
            by_owner[user.email].append(generation)
    if not by_owner:
        return 0
    sent = 0
    with get_connection() as connection:  # one SMTP session for the whole batch
        for email, clips in by_owner.items():
            message = outcome_email(email=email, clips=clips, connection=connection)
            try:
                message.send()
            except Exception:  # the clips are what they are; their pages say the same
                log.exception("could not email %s about %d clips", email, len(clips))
            else:
                sent += 1
    return sent


def outcome_email(*, email: str, clips: list[Generation], connection=None) -> EmailMessage:
    """One owner's email about the clips of theirs that ended: the clip's own email for one,
    a digest for several."""
    base = settings.PUBLIC_BASE_URL
    items = [
        {
            "g": g,
            "ready": g.state == State.SUCCEEDED,
            "link": f"{base}{g.get_absolute_url()}" if base else "",
        }
        for g in clips
    ]
    ready = sum(item["ready"] for item in items)
    failed = len(items) - ready
    context = {"clips": items, "ready": ready, "failed": failed, "site_name": settings.SITE_NAME}
    return EmailMessage(
        f"{settings.SITE_NAME}: {_summary(ready, failed)}",
        render_to_string("generation/email/outcome.txt", context),
        None,
        [email],
        connection=connection,
    )


def _summary(ready: int, failed: int) -> str:
    if ready + failed == 1:
        return "your video is ready" if ready else "your video could not be made"
    parts = []
    if ready:
        parts.append(f"{ready} videos are ready" if ready > 1 else "1 video is ready")
    if failed:
        parts.append(
            f"{failed} could not be made" if ready else f"{failed} videos could not be made"
        )
    return ", ".join(parts)
