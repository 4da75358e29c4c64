"""OpenAI moderation (omni-moderation-latest) of the prompt and input images, failing closed.

Uses the real openai client with a short timeout and no retries: a slow or broken moderation
service holds the request for a moderator, it never lets it through.
"""

from __future__ import annotations

import base64
import logging

import openai
from django.conf import settings

from .policy import ALLOWED, BLOCK, HOLD, Decision, Policy

log = logging.getLogger(__name__)

_IMAGE_TYPES = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
]


def _content_type(data: bytes) -> str:
    for magic, content_type in _IMAGE_TYPES:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def data_uri(data: bytes) -> str:
    return f"data:{_content_type(data)};base64,{base64.b64encode(data).decode('ascii')}"


def enabled() -> bool:
    return bool(settings.OPENAI_API_KEY)


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.OPENAI_MODERATION_TIMEOUT,
        max_retries=0,
    )


def _unavailable(policy: Policy, why: str) -> Decision:
    return Decision(
        action=HOLD,
        title=policy.unavailable_title,
        explanation=policy.unavailable_explanation,
        source="error",
        detail=why[:1000],
    )


def requests_for(prompt: str, images: list[bytes]) -> list[list[dict]]:
    """The inputs of each moderation request: the prompt with the first image, then one
    request per further image. OpenAI's moderation takes at most one image per request
    (HTTP 400 `too_many_images`: "Number of images (2) exceeds maximum of 1")."""
    text = [{"type": "text", "text": prompt}] if prompt and prompt.strip() else []
    pictures = [{"type": "image_url", "image_url": {"url": data_uri(image)}} for image in images]
    if not pictures:
        return [text] if text else []
    return [text + pictures[:1]] + [[picture] for picture in pictures[1:]]


def check(policy: Policy, prompt: str, images: list[bytes]) -> Decision:
    """Ask OpenAI; map flagged categories through the policy. Any failure holds."""
    requests = requests_for(prompt, images)
    if not requests:
        return ALLOWED
    try:
        client = _client()
        flagged: set[str] = set()
        for items in requests:
            response = client.moderations.create(
                model=settings.OPENAI_MODERATION_MODEL, input=items
            )
            if not response.results:
                raise ValueError("the moderation response has no results")
            for result in response.results:
                categories = result.categories.model_dump(by_alias=True)
                hits = {name for name, hit in categories.items() if hit}
                if result.flagged and not hits:
                    hits.add("(flagged without a category)")
                flagged.update(hits)
    except Exception as exc:  # noqa: BLE001 - fail closed on anything, and say why
        log.warning("OpenAI moderation failed, holding for review: %r", exc)
        return _unavailable(policy, f"OpenAI moderation failed: {type(exc).__name__}: {exc}")
    if not flagged:
        return ALLOWED
    worst = None
    for name in sorted(flagged):
        mapped = policy.openai.get(name)
        if mapped is None:
            candidate = Decision(
                action=HOLD,
                title=policy.unmapped_title,
                explanation=policy.unmapped_explanation,
                source="openai",
                detail=f"OpenAI flagged: {', '.join(sorted(flagged))}",
            )
        else:
            category = policy.category(mapped[0])
            action = mapped[1]
            explanation = category.explanation
            if action != category.decision and action == HOLD:
                explanation = (
                    "This request is waiting for a moderator because it may fall under our policy "
                    f"on {category.title.lower()}. We will tell you what they decide."
                )
            candidate = Decision(
                action=action,
                category=category.id,
                title=category.title,
                explanation=explanation,
                source="openai",
                detail=f"OpenAI flagged: {', '.join(sorted(flagged))}",
            )
        if worst is None or candidate.worse_than(worst):
            worst = candidate
        if worst.action == BLOCK:
            break
    return worst
