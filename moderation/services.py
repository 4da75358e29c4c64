"""Moderation write paths and the functions other apps call.

For other apps:
- prompt_check(user=, prompt=, images=) -> Decision   before anything is charged
- apply_decision(generation=, decision=)               after creating a held row for a hold/block
- user_is_suspended(user) -> bool                       before generating / authenticating a key
- output_is_taken_down(generation) -> bool              before serving an output to a non-moderator
- audit_record(actor=, action=, target=, ...)           for staff credit grants, plan changes, keys
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from generation.media import output_hide, output_unhide
from generation.models import Generation, State

from . import openai_check, rules
from .models import (
    AuditAction,
    AuditEntry,
    ModerationCase,
    Report,
    TakeDown,
    UserStanding,
)
from .policy import BLOCK, HOLD, Decision, get_policy

log = logging.getLogger(__name__)

MODERATE_PERMISSION = "moderation.moderate"
MODERATION_ERROR_CODE = "moderation_blocked"
TAKEN_DOWN_ERROR_CODE = "moderation_taken_down"


# --- Checks -------------------------------------------------------------------------------------
def prompt_check(*, user, prompt: str, images: list[bytes]) -> Decision:
    """Allow, hold or block a request before anything is charged (design §6).

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


def is_moderator(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(MODERATE_PERMISSION)
    )


def _require_moderator(user) -> None:
    if not is_moderator(user):
        raise PermissionDenied("Only moderators can do this.")


# --- Audit log ----------------------------------------------------------------------------------
def client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    actor,
    action: str,
    target=None,
    reason: str = "",
    before=None,
    after=None,
    request=None,
) -> AuditEntry:
    """Append one audit entry. actor None means the system. target: any model instance."""
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}; add it to AuditAction")
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_repr=str(actor) if actor is not None else "",
        action=action,
        target_type=ContentType.objects.get_for_model(target, for_concrete_model=True)
        if target is not None
        else None,
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:300] if target is not None else "",
        reason=reason or "",
        before=before,
        after=after,
        ip=client_ip(request),
    )


# --- Automatic decisions ------------------------------------------------------------------------
def apply_decision(*, generation: Generation, decision: Decision, request=None) -> None:
    """Record a hold or block for a row that generation_create stored in state `held`.

    Call inside generation_create's transaction, after the row (and its credit hold) exists.
    hold: the row stays held and joins the moderators' queue. block: the row moves
    held → blocked at once (the transition hook releases the credits), with the policy's
    explanation as its error message.
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
    if blocked:
        Generation.objects.transition(
            generation.pk,
            State.BLOCKED,
            sources=[State.HELD],
            error_code=MODERATION_ERROR_CODE,
            error_message=_user_message(decision.title, decision.explanation),
        )
    audit_record(
        actor=None,
        action=AuditAction.AUTO_BLOCK if blocked else AuditAction.AUTO_HOLD,
        target=generation,
        reason=f"{decision.title}: {decision.detail}" if decision.title else decision.detail,
        after={"state": State.BLOCKED if blocked else State.HELD, "category": decision.category},
        request=request,
    )


def _user_message(title: str, explanation: str) -> str:
    return f"{title} — {explanation}" if title else explanation


# --- Held queue ---------------------------------------------------------------------------------
def held_approve(*, generation: Generation, moderator, note: str = "", request=None) -> bool:
    """held → queued, then submit after commit. False if it was no longer held."""
    _require_moderator(moderator)
    from generation import services as generation_services

    with transaction.atomic():
        # Due at once: the tracker submits it (generation_services.enqueue_submit).
        if not Generation.objects.transition(
            generation.pk, State.QUEUED, sources=[State.HELD], next_check_at=timezone.now()
        ):
            return False
        ModerationCase.objects.filter(generation_id=generation.pk).update(
            status=ModerationCase.Status.APPROVED,
            decided_by=moderator,
            decided_at=timezone.now(),
            decision_note=note,
        )
        audit_record(
            actor=moderator,
            action=AuditAction.APPROVE,
            target=generation,
            reason=note,
            before={"state": State.HELD},
            after={"state": State.QUEUED},
            request=request,
        )
        pk = generation.pk
        transaction.on_commit(lambda: generation_services.enqueue_submit(pk))
    return True


def held_reject(
    *,
    generation: Generation,
    moderator,
    category: str = "",
    note: str = "",
    request=None,
) -> bool:
    """held → blocked (credits released by the transition hook); the user sees the policy.

    category: a policy category id; defaults to the one the automatic check flagged.
    A rejection is a confirmed violation (see AUTO_SUSPEND_AFTER_VIOLATIONS).
    """
    _require_moderator(moderator)
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
        moved = Generation.objects.transition(
            generation.pk,
            State.BLOCKED,
            sources=[State.HELD],
            error_code=MODERATION_ERROR_CODE,
            error_message=_user_message(title, explanation),
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
        )
        audit_record(
            actor=moderator,
            action=AuditAction.REJECT,
            target=generation,
            reason=f"{title}. {note}".strip(),
            before={"state": State.HELD},
            after={"state": State.BLOCKED, "category": chosen.id if chosen else ""},
            request=request,
        )
        _violation(generation.user, request=request)
    return True


# --- Take-downs and reports ---------------------------------------------------------------------
def output_take_down(
    *, generation: Generation, moderator, category: str = "", reason: str = "", request=None
) -> bool:
    """Stop serving an output to anyone but moderators; open reports on it become actioned.

    A confirmed violation of the owner. False if it was already taken down.
    """
    _require_moderator(moderator)
    chosen = get_policy().category(category)
    text = _user_message(chosen.title, reason or chosen.explanation) if chosen else reason
    with transaction.atomic():
        _, created = TakeDown.objects.get_or_create(
            generation=generation,
            defaults={
                "actor": moderator,
                "category": chosen.id if chosen else "",
                "reason": text or "Taken down for breaking our content policy.",
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
        _violation(generation.user, request=request)
        # Links handed out before now must stop working too (S3's cannot be revoked).
        transaction.on_commit(lambda: output_hide(generation.pk))
    return True


def output_restore(*, generation: Generation, moderator, reason: str = "", request=None) -> bool:
    _require_moderator(moderator)
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
        transaction.on_commit(lambda: output_unhide(generation.pk))
    return True


def reports_dismiss(*, generation: Generation, moderator, reason: str = "", request=None) -> int:
    """Close the open reports on an output without action. Returns how many."""
    _require_moderator(moderator)
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
        _require_moderator(actor)
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
    return True


def user_unsuspend(*, user, actor, reason: str = "", request=None) -> bool:
    _require_moderator(actor)
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
    return True


def _violation(user, *, request=None) -> None:
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
