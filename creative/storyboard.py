"""Storyboard from text: a blog post or a script becomes up to MAX_SCENES scene prompts.

Offline (no OPENAI_API_KEY, or the model fails): the text is split by paragraphs, or by
sentences when it is one paragraph, and neighbours are merged until there are at most
MAX_SCENES; each scene is shortened to a slot's length at a word boundary. With a key, an
OpenAI chat model (the real `openai` client; OPENAI_BASE_URL points it at a local fake in
tests) writes one visual prompt per scene as JSON. Each scene is then filled into the chosen
template's main slot, shown for editing, and queued as one batch (workflows.batches).
"""

import json
import logging
import re
from dataclasses import dataclass

import openai
from django.conf import settings

from core.errors import InputError

from .models import PromptTemplate
from .templating import SLOT_MAX_CHARS, Filled, template_fill

log = logging.getLogger(__name__)

MAX_SCENES = 5
MAX_TEXT_CHARS = 20_000
SYSTEM_PROMPT = (
    "You turn a text into a storyboard for short AI video clips. Split it into at most "
    f"{MAX_SCENES} scenes in story order. For each scene write one visual prompt of at most "
    "25 words: who or what is on screen and what happens, concrete and filmable, no camera "
    "or style words (the template adds them), no text on screen. Answer with JSON only: "
    '{"scenes": [{"prompt": "..."}]}'
)


@dataclass(frozen=True)
class Draft:
    scenes: list[str]
    source: str  # "openai" or "offline"
    note: str = ""  # why the offline split was used although a key is set


def _shorten(text: str, limit: int = SLOT_MAX_CHARS) -> str:
    text = " ".join(text.split()).strip()
    if len(text) <= limit:
        return text.rstrip(".")
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.")


def split_scenes(text: str, max_scenes: int = MAX_SCENES) -> list[str]:
    """Paragraphs, else sentences; merged in order until there are at most max_scenes."""
    text = (text or "").strip()
    units = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(units) < 2:
        units = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s.strip()]
    if not units:
        return []
    if len(units) > max_scenes:
        # Even groups of neighbours: the first groups take one more when it does not divide.
        size, extra = divmod(len(units), max_scenes)
        grouped, start = [], 0
        for index in range(max_scenes):
            end = start + size + (1 if index < extra else 0)
            grouped.append(" ".join(units[start:end]))
            start = end
        units = grouped
    return [_shorten(unit) for unit in units if _shorten(unit)]


def storyboard_draft(text: str) -> Draft:
    """The scenes of `text`: by the chat model when a key is set and it answers well, else
    split offline (with a note saying why)."""
    text = (text or "").strip()
    if not text:
        raise InputError({"text": "Paste the text to turn into scenes."})
    if len(text) > MAX_TEXT_CHARS:
        raise InputError({"text": f"At most {MAX_TEXT_CHARS} characters; got {len(text)}."})
    if not settings.OPENAI_API_KEY:
        return Draft(scenes=split_scenes(text), source="offline")
    try:
        return Draft(scenes=_openai_scenes(text), source="openai")
    except (openai.OpenAIError, ValueError, KeyError, TypeError) as exc:
        log.warning("storyboard: the chat model failed (%s); splitting offline", exc)
        return Draft(
            scenes=split_scenes(text),
            source="offline",
            note="The writing assistant did not answer; the text was split by its sentences.",
        )


def _openai_scenes(text: str) -> list[str]:
    client = openai.OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.OPENAI_STORYBOARD_TIMEOUT,
        max_retries=0,
    )
    answer = client.chat.completions.create(
        model=settings.OPENAI_STORYBOARD_MODEL,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ],
        response_format={"type": "json_object"},
        temperature=0.4,
    )
    content = answer.choices[0].message.content or ""
    scenes = json.loads(content)["scenes"]
    if not isinstance(scenes, list) or not scenes:
        raise ValueError("no scenes in the answer")
    prompts = []
    for scene in scenes[:MAX_SCENES]:
        prompt = scene.get("prompt") if isinstance(scene, dict) else scene
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("a scene without a prompt")
        prompts.append(_shorten(prompt))
    return prompts


def main_slot(template: PromptTemplate) -> str:
    """The slot a scene fills: the first one without a default, else the first."""
    for slot in template.slots:
        if not slot.get("default"):
            return slot["name"]
    return template.slots[0]["name"] if template.slots else ""


def storyboard_fill(
    template: PromptTemplate, scenes: list[str], slots: dict | None = None
) -> list[Filled]:
    """Each scene in the template's main slot, the other slots as given (or defaults);
    errors keyed scenes[i] name the scene to fix."""
    if not scenes:
        raise InputError({"scenes": "No scene to render: the text gave none."})
    if len(scenes) > MAX_SCENES:
        raise InputError({"scenes": f"At most {MAX_SCENES} scenes; got {len(scenes)}."})
    slot = main_slot(template)
    mid_sentence = not template.text.lstrip().startswith("{" + slot + "}")
    filled, errors = [], {}
    for index, scene in enumerate(scenes):
        if mid_sentence:
            scene = _lowercase_article(scene)
        try:
            filled.append(template_fill(template, {**(slots or {}), slot: scene}))
        except InputError as exc:
            errors.update({f"scenes[{index}]": message for message in exc.errors.values()})
    if errors:
        raise InputError(errors)
    return filled


# A scene is a sentence ("A baker wakes before dawn."); inside a template's sentence
# ("Cinematic medium shot of {scene}") its opening article reads as a typo. Only these words
# are lowered: a name ("Paris at night") keeps its capital.
_ARTICLES = ("A", "An", "The", "This", "That", "These", "Those", "Her", "His", "Their", "Our")


def _lowercase_article(scene: str) -> str:
    first, _, rest = scene.partition(" ")
    return f"{first.lower()} {rest}" if rest and first in _ARTICLES else scene
