"""Moderation write paths and the functions other apps call.

For other apps:
- prompt_check(user=, prompt=, images=) -> Decision   before anything is charged
- user_is_suspended(user) -> bool                       before generating / authenticating a key
- output_is_taken_down(generation) -> bool              before serving an output to a non-moderator

Decisions that move a generation (the automatic hold or block, approving or rejecting a held
one) are workflows.review: they go through the lifecycle, which this app does not import.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.audit import audit_record
from core.models import AuditAction
from generation.delivery import SignedFile
from generation.media import output_hide, output_unhide
from generation.models import Generation, State

from . import openai_check, rules
from .models import (
    ModerationCase,
    Report,
    TakeDown,
    UserStanding,
)
from .notices import owner_tell
from .policy import Decision, get_policy

log = logging.getLogger(__name__)

MODERATE_PERMISSION = "moderation.moderate"
MODERATION_ERROR_CODE = "moderation_blocked"
TAKEN_DOWN_ERROR_CODE = "moderation_taken_down"


# --- Checks -------------------------------------------------------------------------------------
def prompt_check(*, user, prompt: str, images: list[bytes]) -> Decision:
    """Allow, hold or block a request before anything is charged (README "Moderation").

    The built-in rules always run; a rules block is final. Otherwise OpenAI moderation runs
    when OPENAI_API_KEY is set, and the more severe of the two decisions wins. Any failure of
    the moderation service holds the request (fails closed).
    """
    policy = get_policy()
    decision = rules.check_text(policy, prompt or "", has_image=bool(images))
    if decision.blocked:
        return decision
    if openai_check.enabled():
        remote = openai_check.check(policy, prompt or "", list(images))
        if remote.worse_than(decision):
            decision = remote
    if not decision.allowed:
        log.info(
            "prompt check for user %s: %s (%s) %s",
            getattr(user, "pk", None),
            decision.action,
            decision.category or "-",
            decision.source,
        )
    return decision


def user_is_suspended(user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return UserStanding.objects.filter(user_id=user.pk, suspended_at__isnull=False).exists()


def remake_of_taken_down(*, user, endpoint_id: str, prompt: str, seed: int) -> bool:
    """Whether this user's request would remake one of their taken-down videos: the same
    endpoint, prompt and seed give the same video (an HD re-render or a create through the
    API with the seed copied from the original)."""
    return TakeDown.objects.filter(
        generation__user=user,
        generation__endpoint_id=endpoint_id,
        generation__prompt=prompt,
        generation__seed=seed,
    ).exists()


def output_is_taken_down(generation) -> bool:
    """True when moderators took this output down: serve it to moderators only."""
    pk = getattr(generation, "pk", generation)
    return TakeDown.objects.filter(generation_id=pk).exists()


def signed_link_taken_down(signed: SignedFile) -> bool:
    """Whether the file is the output or poster of a taken-down generation (one indexed
    lookup). Links signed before tokens named their generation are looked up by file name."""
    if signed.generation_id is not None:
        return TakeDown.objects.filter(generation_id=signed.generation_id).exists()
    return TakeDown.objects.filter(
        Q(generation__output=signed.name) | Q(generation__poster=signed.name)
    ).exists()


def is_moderator(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(MODERATE_PERMISSION)
    )


def require_moderator(user) -> None:
    if not is_moderator(user):
        raise PermissionDenied("Only moderators can do this.")


def policy_message(title: str, explanation: str) -> str:
    """What the owner of a blocked or taken-down generation reads."""
    return f"{title} — {explanation}" if title else explanation


# --- Take-downs and reports ---------------------------------------------------------------------
def output_take_down(
    *,
    generation: Generation,
    moderator,
    category: str = "",
    reason: str = "",
    message: str = "",
    request=None,
) -> bool:
    """Stop serving an output to anyone but moderators; open reports on it become actioned.

    A confirmed violation of the owner. False if it was already taken down. reason: the
    moderators' private note (audit log); message: to the owner, with the policy.
    """
    require_moderator(moderator)
    chosen = get_policy().category(category)
    told = policy_message(chosen.title, chosen.explanation) if chosen else ""
    if message:
        told = f"{told}\n\nFrom the moderator: {message}".strip()
    text = reason or told
    with transaction.atomic():
        _, created = TakeDown.objects.get_or_create(
            generation=generation,
            defaults={
                "actor": moderator,
                "category": chosen.id if chosen else "",
                "reason": told or "Taken down for breaking our content policy.",
                "note": reason,
            },
        )
        if not created:
            return False
        now = timezone.now()
        Report.objects.filter(generation=generation, status=Report.Status.OPEN).update(
            status=Report.Status.ACTIONED, decided_at=now, decided_by=moderator, updated_at=now
        )
        audit_record(
            actor=moderator,
            action=AuditAction.TAKE_DOWN,
            target=generation,
            reason=text,
            before={"served": True},
            after={"served": False, "category": chosen.id if chosen else ""},
            request=request,
        )
        user_violation_add(user=generation.user, request=request)
        owner_tell(
            user=generation.user,
            subject="your video was taken down",
            lines=[
                "A moderator found that this video breaks our content policy. It is no longer "
                "shown or downloadable, to you or anyone else.",
                told or "Taken down for breaking our content policy.",
            ],
            path=generation.get_absolute_url(),
        )
        # Links handed out before now must stop working too (S3's cannot be revoked).
        transaction.on_commit(lambda: output_hide(generation.pk))
    return True


def output_restore(*, generation: Generation, moderator, reason: str = "", request=None) -> bool:
    require_moderator(moderator)
    with transaction.atomic():
        deleted, _ = TakeDown.objects.filter(generation=generation).delete()
        if not deleted:
            return False
        audit_record(
            actor=moderator,
            action=AuditAction.RESTORE,
            target=generation,
            reason=reason,
            before={"served": False},
            after={"served": True},
            request=request,
        )
        owner_tell(
            user=generation.user,
            subject="your video is available again",
            lines=["A moderator looked at your video again and restored it."],
            path=generation.get_absolute_url(),
        )
        transaction.on_commit(lambda: output_unhide(generation.pk))
    return True


def reports_dismiss(*, generation: Generation, moderator, reason: str = "", request=None) -> int:
    """Close the open reports on an output without action. Returns how many."""
    require_moderator(moderator)
    now = timezone.now()
    with transaction.atomic():
        count = Report.objects.filter(generation=generation, status=Report.Status.OPEN).update(
            status=Report.Status.DISMISSED, decided_at=now, decided_by=moderator, updated_at=now
        )
        if count:
            audit_record(
                actor=moderator,
                action=AuditAction.REPORT_DISMISS,
                target=generation,
                reason=reason,
                before={"open_reports": count},
                after={"open_reports": 0},
                request=request,
            )
    return count


def report_create(*, generation: Generation, reporter, reason: str, details: str = ""):
    """File a report; a second report by the same user is folded into the first.

    The caller checks the reporter can see the output. Returns (report, created).
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            return (
                Report.objects.create(
                    generation=generation,
                    reporter=reporter,
                    reason=reason,
                    details=details,
                    created_at=now,
                    updated_at=now,
                ),
                True,
            )
    except IntegrityError:
        pass
    report = Report.objects.get(generation=generation, reporter=reporter)
    changes = {"times": F("times") + 1, "updated_at": now}
    if report.status != Report.Status.OPEN and not output_is_taken_down(generation):
        # Reported again after a dismissal: back in the queue with the new reason.
        changes.update(status=Report.Status.OPEN, decided_at=None, decided_by=None)
    if report.status == Report.Status.OPEN or "status" in changes:
        changes.update(reason=reason, details=details or report.details)
    Report.objects.filter(pk=report.pk).update(**changes)
    report.refresh_from_db()
    return report, False


# --- Suspensions --------------------------------------------------------------------------------
def user_suspend(*, user, actor, reason: str = "", request=None, automatic: bool = False) -> bool:
    """Suspended users cannot generate or use API keys. False if already suspended."""
    if not automatic:
        require_moderator(actor)
    now = timezone.now()
    with transaction.atomic():
        UserStanding.objects.get_or_create(user=user)
        moved = UserStanding.objects.filter(user=user, suspended_at__isnull=True).update(
            suspended_at=now,
            suspended_reason=reason,
            suspended_by=None if automatic else actor,
            updated_at=now,
        )
        if not moved:
            return False
        audit_record(
            actor=None if automatic else actor,
            action=AuditAction.AUTO_SUSPEND if automatic else AuditAction.SUSPEND,
            target=user,
            reason=reason,
            before={"suspended": False},
            after={"suspended": True},
            request=request,
        )
        owner_tell(
            user=user,
            subject="your account is suspended",
            lines=[
                "Your account can no longer start videos or use API keys"
                + (
                    ", after repeated breaches of our content policy."
                    if automatic
                    else ": a moderator suspended it under our content policy."
                ),
                "Reply to this email if you think this is a mistake.",
            ],
        )
    return True


def user_unsuspend(*, user, actor, reason: str = "", request=None) -> bool:
    require_moderator(actor)
    now = timezone.now()
    with transaction.atomic():
        moved = UserStanding.objects.filter(user=user, suspended_at__isnull=False).update(
            suspended_at=None, suspended_reason="", suspended_by=None, updated_at=now
        )
        if not moved:
            return False
        audit_record(
            actor=actor,
            action=AuditAction.UNSUSPEND,
            target=user,
            reason=reason,
            before={"suspended": True},
            after={"suspended": False},
            request=request,
        )
        owner_tell(
            user=user,
            subject="your account is active again",
            lines=["A moderator lifted the suspension: you can make videos again."],
        )
    return True


def user_violation_add(*, user, request=None) -> None:
    """Count a confirmed violation; suspend at AUTO_SUSPEND_AFTER_VIOLATIONS (0 = never)."""
    UserStanding.objects.get_or_create(user=user)
    UserStanding.objects.filter(user=user).update(
        violations=F("violations") + 1, updated_at=timezone.now()
    )
    limit = settings.AUTO_SUSPEND_AFTER_VIOLATIONS
    standing = UserStanding.objects.get(user=user)
    if limit and standing.violations >= limit and standing.suspended_at is None:
        user_suspend(
            user=user,
            actor=None,
            automatic=True,
            reason=f"{standing.violations} confirmed policy violations.",
            request=request,
        )


# --- What the user sees -------------------------------------------------------------------------
def moderation_notice(generation: Generation) -> dict | None:
    """What the generation page says about moderation, or None. Never names the moderator."""
    takedown = TakeDown.objects.filter(generation_id=generation.pk).first()
    if takedown is not None:
        return {"kind": "taken_down", "message": takedown.reason}
    if generation.state == State.HELD:
        case = ModerationCase.objects.filter(generation_id=generation.pk).first()
        return {
            "kind": "held",
            "message": (
                case.explanation
                if case and case.explanation
                else "This request is waiting for a moderator. We will tell you what they decide."
            ),
        }
    if generation.state == State.BLOCKED:
        return {
            "kind": "blocked",
            "message": generation.error_message
            or "This request was refused under our content policy.",
        }
    return None


# --- Retention ----------------------------------------------------------------------------------
def purge_old_prompts() -> int:
    """Clear prompts kept on moderation cases after MODERATION_PROMPT_RETENTION_DAYS."""
    days = settings.MODERATION_PROMPT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return ModerationCase.objects.filter(created_at__lt=cutoff).exclude(prompt="").update(prompt="")


def user_flag(*, user, reason: str) -> bool:
    """Flag an account for a moderator's look (not a suspension). False if already flagged."""
    standing, _ = UserStanding.objects.get_or_create(user=user)
    flagged = UserStanding.objects.filter(pk=standing.pk, flagged_at__isnull=True).update(
        flagged_at=timezone.now(), flag_reason=reason[:200], updated_at=timezone.now()
    )
    if flagged:
        audit_record(actor=None, action=AuditAction.FLAG, target=user, reason=reason)
    return bool(flagged)
