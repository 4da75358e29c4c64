"""The append-only audit log: every decision with consequences, by whoever made it."""

from django.contrib.contenttypes.models import ContentType

from .models import AuditAction, AuditEntry
from .net import client_ip


def audit_record(
    *,
    actor,
    action: str,
    target=None,
    reason: str = "",
    before=None,
    after=None,
    request=None,
    actor_repr: str = "",
) -> AuditEntry:
    """Append one audit entry.

    actor: the user who decided, or None for the system; then `actor_repr` names which part of
    it ("worker", "tracker", "fal webhook"). target: any model instance. request: where the
    decision came from (its client address, as core.net.client_ip reads it).
    """
    if action not in AuditAction.values:
        raise ValueError(f"unknown audit action {action!r}; add it to AuditAction")
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_repr=str(actor) if actor is not None else actor_repr,
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
