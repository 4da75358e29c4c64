"""The check of a finished video before anyone sees it: sampled frames -> Decision.

workflows.pipeline's finalize samples the first, middle and last frame of our stored copy
(generation.probe.sample_frames) and asks output_check(). With OPENAI_API_KEY set the frames go
to omni-moderation as images (one per request, see openai_check.requests_for); without it there
is no image classifier offline, so the output is allowed (the prompt and the input images were
judged before submission). Anything but "allow" holds the output for a moderator, whatever the
category's usual decision: the video exists and was paid for, a person decides what happens to
it (moderation.services.output_hold). A failing OpenAI check holds too (fails closed).

provider_refusal() is the same kind of hold for a provider that refused to render (fal's
422 `content_policy_violation`, pipeline code "content_policy").
"""

from __future__ import annotations

from dataclasses import replace

from . import openai_check
from .policy import ALLOWED, HOLD, Decision, get_policy

UNDER_REVIEW = (
    "Your video is under review: our automatic check of the finished video asked a moderator to "
    "look at it before it is shown. Your credits stay reserved until they decide, and we will "
    "tell you what they decide."
)
PROVIDER_REFUSED = (
    "Your request is under review: the video service refused it under its content policy, so a "
    "moderator will look at it. Your credits stay reserved until they decide, and we will tell "
    "you what they decide."
)
SOURCE_OUTPUT = "output"  # ModerationCase.source of a held output
SOURCE_PROVIDER = "provider"  # ... of a provider's content-policy refusal


def wants_frames() -> bool:
    """Whether output_check would look at frames (sampling them costs a decoding pass)."""
    return openai_check.enabled()


def output_check(*, frames: list[bytes] | tuple[bytes, ...]) -> Decision:
    """Allow, or hold for a moderator, a finished video judged by its sampled frames."""
    if not wants_frames():
        return ALLOWED
    if not frames:  # asked for but missing: nothing was judged, so nothing is shown
        return Decision(
            action=HOLD,
            explanation=UNDER_REVIEW,
            source=SOURCE_OUTPUT,
            detail="Output frames: none were sampled from the stored video.",
        )
    decision = openai_check.check(get_policy(), "", list(frames))
    if decision.allowed:
        return decision
    # source "openai" (flagged) or "error" (the check failed) stays visible in the detail.
    return replace(
        decision,
        action=HOLD,
        explanation=UNDER_REVIEW,
        source=SOURCE_OUTPUT,
        detail=f"Output frames (first, middle, last), {decision.source}: {decision.detail}",
    )


def provider_refusal(message: str) -> Decision:
    return Decision(
        action=HOLD,
        title="Refused by the video service",
        explanation=PROVIDER_REFUSED,
        source=SOURCE_PROVIDER,
        detail=f"The provider's content-policy refusal: {message}"[:2000],
    )
