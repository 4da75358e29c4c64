"""Every move of a generation from one state to another goes through `generation_move`.

A move is one transaction holding all that it causes, so either all of it happens or none:

1. the state change itself: Generation.objects.transition, a conditional UPDATE that only one
   caller can win (a duplicate webhook, a racing tracker or a retried task finds the row gone
   from the source state and does nothing, including none of the effects below);
2. on a terminal state, the credits held at creation are captured (succeeded) or released
   (failed, canceled, blocked), and the render's slot in flight is freed (billing.holds); a
   row held for a moderator takes its slot only when approved;
3. on a state an API client can subscribe to, the webhook delivery row (the outbox: api.webhooks),
   sent by a task enqueued on commit and by the minute sweep if that task is lost;
4. an audit entry for every move that ends or redirects a job, whoever made it: the owner, an
   API key's client, a moderator or one of our own processes (core.audit);
5. on succeeded or failed, the owner's email: the sender is kicked when the move commits
   (workflows.notifications; at most one email per clip, several of one owner's in one).

Routine progress (submitting, in the provider's queue, rendering, saving) changes the row alone:
one UPDATE, no transaction of its own, since nothing else depends on it. The state machine
(which state may follow which) is generation.models.ALLOWED_SOURCES; docs/architecture.md draws
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from api.webhooks import webhook_outbox_add
from billing.holds import credits_settle, slot_free, slot_take
from core import metrics
from core.audit import audit_record
from core.models import AuditAction
from generation.models import ALLOWED_SOURCES, TERMINAL, Generation, State
from generation.stages import TIMING_COLUMNS, row_stages

from .notifications import ANNOUNCED_OUTCOMES, outcome_notice_queue

# States an API client can subscribe to (api.models.WebhookEvent).
ANNOUNCED = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED, State.HELD, State.BLOCKED})

# The audit entry a move into each state writes unless its caller names another (a moderator's
# approval, a rejection). Succeeded is not audited: the capture in the ledger records it, and
# the row's own timestamps say when.
AUDIT_FOR_STATE = {
    State.CANCELED: AuditAction.GENERATION_CANCEL,
    State.FAILED: AuditAction.GENERATION_FAIL,
    State.QUEUED: AuditAction.GENERATION_RETRY,
}
DEFAULT = object()


@dataclass(frozen=True)
class Actor:
    """Who makes a move: a person (`user`: the owner, a moderator), or one of our processes
    (`process`: "worker", "tracker", "reaper", "fal webhook"). `request` gives the audit log the
    client's address."""

    user: Any = None
    process: str = ""
    request: Any = None

    @classmethod
    def of_request(cls, request) -> Actor:
        return cls(user=request.user, request=request)

    @property
    def label(self) -> str:
        return self.process or ("system" if self.user is None else str(self.user))


WORKER = Actor(process="worker")
TRACKER = Actor(process="tracker")
REAPER = Actor(process="reaper")
FAL_WEBHOOK = Actor(process="fal webhook")


def generation_move(
    *,
    generation_id,
    to: str,
    actor: Actor,
    sources: Sequence[str] | None = None,
    where: dict | None = None,
    audit: Any = DEFAULT,
    reason: str = "",
    audit_after: dict | None = None,
    **changes,
) -> bool:
    """Move one generation to state `to` with all that the move causes; True if it moved.

    sources: narrow the allowed source states; where: extra conditions on the row (a lease);
    changes: other columns to set with the move. audit: the AuditAction to record (None: none;
    default: AUDIT_FOR_STATE), with `reason` and `audit_after` (more of what the decision was).
    """
    action = AUDIT_FOR_STATE.get(to) if audit is DEFAULT else audit
    has_effects = to in TERMINAL or to in ANNOUNCED or action is not None
    if not has_effects:
        moved = Generation.objects.transition(
            generation_id, to, sources=sources, where=where, **changes
        )
        if moved:
            _counted(generation_id, to)
        return moved
    # A row held for a moderator holds credits but no slot in flight (billing.holds): it
    # takes one when approved and, ending from held, frees none.
    from_held_only = set(sources or ALLOWED_SOURCES[to]) == {State.HELD}
    if to in ANNOUNCED_OUTCOMES and from_held_only:
        # Announced by the moderator's decision email (workflows.review), not by the sender.
        changes.setdefault("owner_notified_at", timezone.now())
    with transaction.atomic():
        if not Generation.objects.transition(
            generation_id, to, sources=sources, where=where, **changes
        ):
            return False
        if to in TERMINAL:
            credits_settle(generation_id=generation_id, state=to, frees_slot=not from_held_only)
        elif from_held_only:
            slot_take(generation_id=generation_id)
        elif to == State.HELD:  # back to a moderator after submission (workflows.output_holds)
            slot_free(generation_id=generation_id)
        if to in ANNOUNCED:
            webhook_outbox_add(generation_id=generation_id, state=to)
        if to in ANNOUNCED_OUTCOMES and not from_held_only:
            outcome_notice_queue(generation_id=generation_id)
        if action is not None:
            audit_record(
                actor=actor.user,
                actor_repr=actor.process,
                action=action,
                target=_GenerationRef(generation_id),
                reason=(reason or changes.get("error_message", ""))[:2000],
                before={"state": next(iter(sources))} if sources and len(sources) == 1 else None,
                after={"state": to, **(audit_after or {})},
                request=actor.request,
            )
    _counted(generation_id, to)
    return True


def _counted(generation_id, to: str) -> None:
    """/metrics: the move, and on an end the time the row spent in each stage. Counted when the
    move's transaction is done (not with on_commit: a caller's enclosing transaction that
    rolls back afterwards, which none of ours does on purpose, is not subtracted)."""
    metrics.GENERATION_MOVES.labels(state=to).inc()
    if to in TERMINAL:
        row = Generation.objects.filter(pk=generation_id).values_list(*TIMING_COLUMNS).first()
        for stage, seconds in row_stages(row).items() if row else ():
            metrics.GENERATION_STAGE_SECONDS.labels(stage=stage).observe(seconds)


def generation_held_announce(*, generation: Generation) -> None:
    """A new row that the automatic check holds for a moderator: it was inserted in `held`
    rather than moved there, so its one announcement is written here, in the create's
    transaction (after the webhook subscription)."""
    webhook_outbox_add(generation_id=generation.pk, state=State.HELD)


class _GenerationRef:
    """Enough of a Generation for the audit log (its type and key), without loading the row."""

    _meta = Generation._meta

    def __init__(self, pk):
        self.pk = pk

    def __str__(self) -> str:
        return f"generation {self.pk}"
