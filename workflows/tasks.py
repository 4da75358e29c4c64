"""django-q2 tasks: thin, they take ids and call the pipeline."""

from datetime import datetime

from django.utils import timezone

from core.observability import log_context
from core.shutdown import hands_back_on_stop
from generation.models import Generation, State

from . import notifications, pipeline, tracking


def _release_finalize(generation_id: str, lease: str | None = None):
    """A finalize interrupted by a stopping worker: give up its lease now, not in 15 minutes,
    and queue it again to take the lease afresh (lease None: only if it is free)."""
    Generation.objects.filter(
        pk=generation_id, state=State.FINALIZING, next_check_at__gt=timezone.now()
    ).update(next_check_at=timezone.now())
    return (generation_id, None), {}


@hands_back_on_stop(release=_release_finalize)
def finalize(generation_id: str, lease: str | None = None) -> None:
    with log_context(generation_id=generation_id):
        pipeline.generation_finalize(
            generation_id=generation_id,
            lease=datetime.fromisoformat(lease) if lease else None,
        )


def notify_outcomes() -> int:
    return notifications.outcomes_notify()


def notify_outcome(generation_id: str | None = None) -> int:
    """A task queued by a release before the sender was batched: send what is pending."""
    return notifications.outcomes_notify()


def reap() -> dict:
    return tracking.reap()
