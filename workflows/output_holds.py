"""Holding a generation for a moderator after it was submitted: the output check flagged the
finished video, or the provider refused the request under its content policy. A moderator
decides (workflows.review): approve shows or resends it, reject blocks it."""

import logging

from django.db import transaction
from django.utils import timezone

from core.models import AuditAction
from generation.models import Generation, State
from moderation.models import ModerationCase
from moderation.policy import HOLD, Decision

from .lifecycle import Actor, generation_move

log = logging.getLogger(__name__)


def output_hold(
    *,
    generation_id,
    decision: Decision,
    actor: Actor,
    sources: list[str] | None = None,
    where: dict | None = None,
    **changes,
) -> bool:
    """Hold a submitted generation for a moderator; False if it was no longer where it was.

    For a finished video the output check flagged (`changes` carry the stored output: kept, not
    served) and for a provider's content-policy refusal (no output). Held is not terminal, so
    the credits held at creation stay held (its slot in flight is freed while it waits):
    approving moves a held output to succeeded (captured) and a refused request back to queued;
    rejecting moves either to blocked (released). The case is opened again if an earlier hold
    was approved.
    """
    with transaction.atomic():
        if not generation_move(
            generation_id=generation_id,
            to=State.HELD,
            actor=actor,
            audit=AuditAction.AUTO_HOLD,
            reason=f"{decision.title}: {decision.detail}" if decision.title else decision.detail,
            audit_after={"category": decision.category, "output": bool(changes.get("output"))},
            sources=sources,
            where=where,
            next_check_at=None,
            queue_position=None,
            **changes,
        ):
            return False
        generation = Generation.objects.get(pk=generation_id)
        ModerationCase.objects.update_or_create(
            generation=generation,
            defaults={
                "user_id": generation.user_id,
                "action": HOLD,
                "source": decision.source,
                "category": decision.category,
                "title": decision.title,
                "explanation": decision.explanation,
                "detail": decision.detail,
                "prompt": generation.prompt,
                "status": ModerationCase.Status.OPEN,
                "decided_by": None,
                "decided_at": None,
                "decision_note": "",
                "user_message": "",
                "created_at": timezone.now(),
            },
        )
    log.info("generation %s held after submission: %s", generation_id, decision.detail)
    return True
