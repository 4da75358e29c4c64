"""Moderation decisions that move a generation: the automatic hold or block at create, and a
moderator's approval or rejection of a held one. Each is one generation_move, with the case
record and its audit entry in the same transaction. Decisions that do not move a generation
(take-downs, reports, suspensions) stay in moderation.services."""

from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from core.audit import audit_record
from core.models import AuditAction
from generation.models import Generation, State
from moderation.models import ModerationCase
from moderation.notices import owner_tell
from moderation.policy import BLOCK, HOLD, Decision, get_policy
from moderation.services import (
    MODERATION_ERROR_CODE,
    policy_message,
    require_moderator,
    user_violation_add,
)

from .lifecycle import Actor, generation_held_announce, generation_move
from .pipeline import enqueue_submit


def apply_decision(*, generation: Generation, decision: Decision, request=None) -> None:
    """Record a hold or block for a row that generation_create stored in state `held`.

    Call inside generation_create's transaction, after the row (its credit hold and its webhook
    subscription) exists. hold: the row stays held, joins the moderators' queue and is
    announced as held. block: the row moves held → blocked at once (its credits released, one
    `blocked` announcement), with the policy's explanation as its error message.
    """
    if decision.allowed:
        return
    blocked = decision.action == BLOCK
    ModerationCase.objects.create(
        generation=generation,
        user_id=generation.user_id,
        action=decision.action,
        source=decision.source,
        category=decision.category,
        title=decision.title,
        explanation=decision.explanation,
        detail=decision.detail,
        prompt=generation.prompt,
        status=ModerationCase.Status.AUTO_BLOCKED if blocked else ModerationCase.Status.OPEN,
        decided_at=timezone.now() if blocked else None,
    )
    reason = f"{decision.title}: {decision.detail}" if decision.title else decision.detail
    if blocked:
        generation_move(
            generation_id=generation.pk,
            to=State.BLOCKED,
            actor=Actor(process="automatic check", request=request),
            audit=AuditAction.AUTO_BLOCK,
            reason=reason,
            audit_after={"category": decision.category},
            sources=[State.HELD],
            error_code=MODERATION_ERROR_CODE,
            error_message=policy_message(decision.title, decision.explanation),
        )
        return
    generation_held_announce(generation=generation)
    # A row inserted as held is not a move, so its audit entry is written here.
    audit_record(
        actor=None,
        actor_repr="automatic check",
        action=AuditAction.AUTO_HOLD,
        target=generation,
        reason=reason,
        after={"state": State.HELD, "category": decision.category},
        request=request,
    )


def held_approve(
    *, generation: Generation, moderator, note: str = "", message: str = "", request=None
) -> bool:
    """held → queued (due at once: the tracker submits it). False if it was no longer held.

    note: for moderators only (the case and the audit log); message: to the owner, by email.
    """
    require_moderator(moderator)
    # A held output (rendered and stored, see output_hold) is shown; a held request is sent.
    rendered = Generation.objects.filter(pk=generation.pk).exclude(output="").exists()
    with transaction.atomic():
        # A held output is shown (succeeded); a held request is due at once: the tracker
        # submits it (pipeline.enqueue_submit).
        target = (
            {"to": State.SUCCEEDED, "where": {"output__gt": ""}}
            if rendered
            else {"to": State.QUEUED, "where": {"output": ""}, "next_check_at": timezone.now()}
        )
        moved = generation_move(
            generation_id=generation.pk,
            actor=Actor(user=moderator, request=request),
            audit=AuditAction.APPROVE,
            reason=note,
            sources=[State.HELD],
            **target,
        )
        if not moved:
            return False
        ModerationCase.objects.filter(generation_id=generation.pk).update(
            status=ModerationCase.Status.APPROVED,
            decided_by=moderator,
            decided_at=timezone.now(),
            decision_note=note,
            user_message=message,
        )
        owner_tell(
            user=generation.user,
            subject="your video was approved",
            lines=[
                "A moderator looked at your video and approved it: it is ready to watch."
                if rendered
                else "A moderator looked at your request and approved it; it is being made now.",
                f"“{Truncator(generation.prompt).chars(120)}”",
                message,
            ],
            path=generation.get_absolute_url(),
        )
    if not rendered:
        pk = generation.pk
        transaction.on_commit(lambda: enqueue_submit(pk))
    return True


def held_reject(
    *,
    generation: Generation,
    moderator,
    category: str = "",
    note: str = "",
    message: str = "",
    request=None,
) -> bool:
    """held → blocked (credits released); the user sees the policy and `message` (on the page
    and by email), never the moderators' `note`.

    category: a policy category id; defaults to the one the automatic check flagged.
    A rejection is a confirmed violation (see AUTO_SUSPEND_AFTER_VIOLATIONS).
    """
    require_moderator(moderator)
    policy = get_policy()
    case = ModerationCase.objects.filter(generation_id=generation.pk).first()
    chosen = policy.category(category or (case.category if case else "")) or None
    title = chosen.title if chosen else "Content policy"
    explanation = (
        chosen.explanation
        if chosen
        else "A moderator found that this request breaks our content policy."
    )
    with transaction.atomic():
        moved = generation_move(
            generation_id=generation.pk,
            to=State.BLOCKED,
            actor=Actor(user=moderator, request=request),
            audit=AuditAction.REJECT,
            reason=f"{title}. {note}".strip(),
            audit_after={"category": chosen.id if chosen else ""},
            sources=[State.HELD],
            error_code=MODERATION_ERROR_CODE,
            error_message=policy_message(title, explanation)
            + (f"\n\nFrom the moderator: {message}" if message else ""),
        )
        if not moved:
            return False
        if case is None:
            case = ModerationCase.objects.create(
                generation=generation,
                user_id=generation.user_id,
                action=HOLD,
                source="manual",
                prompt=generation.prompt,
            )
        ModerationCase.objects.filter(pk=case.pk).update(
            status=ModerationCase.Status.REJECTED,
            category=chosen.id if chosen else case.category,
            title=title,
            explanation=explanation,
            decided_by=moderator,
            decided_at=timezone.now(),
            decision_note=note,
            user_message=message,
        )
        user_violation_add(user=generation.user, request=request)
        owner_tell(
            user=generation.user,
            subject=f"your request was blocked ({title})",
            lines=[
                "A moderator found that this request breaks our content policy, so it was not "
                "made. Your credits are back.",
                f"“{Truncator(generation.prompt).chars(120)}”",
                policy_message(title, explanation),
                f"From the moderator: {message}" if message else "",
            ],
            path=generation.get_absolute_url(),
        )
    return True
