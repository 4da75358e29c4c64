"""How far along a generation is, as the page and the status endpoint show it."""

from django.urls import reverse
from django.utils import timezone

from .models import AT_PROVIDER, Generation, State

# Rough share of the bar each stage reaches; rendering fills the gap by elapsed time.
STAGE_PERCENT = {
    State.HELD: 2,
    State.QUEUED: 5,
    State.SUBMITTING: 10,
    State.IN_QUEUE: 15,
    State.IN_PROGRESS: 30,
    State.FINALIZING: 92,
    State.SUCCEEDED: 100,
}
# A typical render time, to move the bar while the provider works (seconds per video second).
EXPECTED_RENDER_SECONDS_PER_SECOND = 6

# A cancel the provider has been asked for but has not confirmed (generation_cancel).
CANCEL_REQUESTED_NOTICE = (
    "You asked to cancel it and the provider has been told to stop. If it has got too far "
    "to stop, it finishes and is charged as usual; otherwise its credits come back."
)


def progress_of(generation: Generation, *, paused_notice: str = "") -> dict:
    """paused_notice: the provider is paused (workflows.circuit) and this row waits for it."""
    percent = STAGE_PERCENT.get(generation.state, 100)
    if generation.state == State.IN_PROGRESS and generation.in_progress_at:
        elapsed = (timezone.now() - generation.in_progress_at).total_seconds()
        expected = EXPECTED_RENDER_SECONDS_PER_SECOND * generation.duration
        percent = min(90, 30 + int(60 * elapsed / expected))
    label, notice = generation.get_state_display(), ""
    if paused_notice:
        label, notice = "Waiting: the provider is paused", paused_notice
    elif generation.cancel_requested_at and generation.state in AT_PROVIDER:
        label, notice = "Stopping", CANCEL_REQUESTED_NOTICE
    data = {
        "id": str(generation.pk),
        "state": generation.state,
        "label": label,
        "notice": notice,
        "percent": percent,
        "queue_position": generation.queue_position,
        "terminal": generation.is_terminal,
        "error_code": generation.error_code,
        "error_message": generation.error_message if generation.state == State.FAILED else "",
    }
    if generation.state == State.SUCCEEDED:
        data["video_url"] = reverse("generation_media", args=[generation.pk, "video"])
        data["poster_url"] = reverse("generation_media", args=[generation.pk, "poster"])
    return data
