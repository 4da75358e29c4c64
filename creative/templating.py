"""Prompt templates: the shipped library, filling slots, and what a template suggests.

A template's text names its slots as {name}. Filling is a plain substitution (never
str.format: a slot value holding braces stays text). A slot with an empty default must be
given; a slot value is one line of at most SLOT_MAX_CHARS characters.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.text import slugify

from core.errors import InputError
from generation import catalogue

from .models import PromptTemplate

SHIPPED_FILE = Path(__file__).with_name("templates.json")
SLOT_MAX_CHARS = 200
SLOT_PATTERN = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# The create fields a template may suggest (PromptTemplate.settings).
SETTING_FIELDS = ("aspect_ratio", "resolution", "duration", "preset", "negative_prompt")


def shipped_templates() -> list[dict]:
    return json.loads(SHIPPED_FILE.read_text())["templates"]


def templates_sync(**kwargs) -> int:
    """Insert the shipped templates whose slug is missing; returns how many were added.

    Only missing ones: a shared template staff edited or hid in admin stays as they left it.
    """
    existing = set(PromptTemplate.objects.filter(owner=None).values_list("slug", flat=True))
    added = 0
    for item in shipped_templates():
        if item["slug"] in existing:
            continue
        PromptTemplate.objects.create(
            slug=item["slug"],
            title=item["title"],
            kind=item["kind"],
            description=item.get("description", ""),
            text=item["text"],
            slots=item["slots"],
            endpoint_id=item["endpoint"],
            settings=item.get("settings", {}),
            position=item.get("position", 100),
        )
        added += 1
    return added


def slot_names(text: str) -> list[str]:
    names = []
    for name in SLOT_PATTERN.findall(text):
        if name not in names:
            names.append(name)
    return names


def templates_for(user) -> list[PromptTemplate]:
    """The active templates a user may use: their own first, then the shared ones."""
    signed_in = user is not None and user.is_authenticated
    rows = PromptTemplate.objects.filter(active=True).filter(
        Q(owner=None) | Q(owner=user) if signed_in else Q(owner=None)
    )
    return sorted(rows, key=lambda t: (t.owner_id is None, t.position, t.title))


def template_get(*, user, slug: str) -> PromptTemplate:
    """The user's own template with that slug, else the shared one; InputError naming it."""
    rows = PromptTemplate.objects.filter(slug=str(slug)[:60], active=True)
    own = rows.filter(owner=user).first() if user is not None else None
    found = own or rows.filter(owner=None).first()
    if found is None:
        raise InputError(
            {"template": f"No template {slug!r}. GET /api/v1/templates lists the ones you can use."}
        )
    return found


@dataclass(frozen=True)
class Filled:
    template: PromptTemplate
    prompt: str
    slots: dict[str, str]  # every slot's value as used (given or default)


def template_fill(template: PromptTemplate, given: Mapping[str, Any] | None) -> Filled:
    """The template's prompt with the slots filled; InputError naming each missing or bad slot.

    Errors are keyed `slots.<name>`, so a client sees which slot to fill.
    """
    given = dict(given or {})
    errors: dict[str, str] = {}
    known = {slot["name"]: slot for slot in template.slots}
    for name in given:
        if name not in known:
            errors[f"slots.{name}"] = (
                f"{template.slug} has no slot {name!r}; its slots are: {', '.join(known)}."
            )
    values: dict[str, str] = {}
    for name, slot in known.items():
        raw = given.get(name)
        if raw is not None and not isinstance(raw, str):
            errors[f"slots.{name}"] = "Must be text."
            continue
        value = " ".join((raw or "").split())
        if not value:
            value = slot.get("default", "")
        if not value:
            errors[f"slots.{name}"] = f"Fill in the {slot.get('label', name).lower()} ({name})."
            continue
        if len(value) > SLOT_MAX_CHARS:
            errors[f"slots.{name}"] = (
                f"Too long: {len(value)} characters, a slot takes at most {SLOT_MAX_CHARS}."
            )
            continue
        values[name] = value
    if errors:
        raise InputError(errors)
    prompt = SLOT_PATTERN.sub(lambda match: values.get(match.group(1), ""), template.text)
    return Filled(template=template, prompt=_tidy(prompt), slots=values)


def template_preview(template: PromptTemplate) -> str:
    """The final prompt with the defaults, and [Label] where a slot must be filled."""
    values = {
        slot["name"]: slot.get("default") or f"[{slot.get('label', slot['name'])}]"
        for slot in template.slots
    }
    return _tidy(SLOT_PATTERN.sub(lambda m: values.get(m.group(1), ""), template.text))


def _tidy(prompt: str) -> str:
    """Empty optional slots leave ', ,' behind: one comma, one space, no trailing comma."""
    prompt = re.sub(r"\s*,(\s*,)+", ",", prompt)
    prompt = re.sub(r"\s+", " ", prompt).strip()
    return prompt.strip(", ").strip()


def template_suggestions(template: PromptTemplate, endpoint_id: str) -> dict:
    """The template's settings the endpoint takes (a preset always applies)."""
    endpoint = catalogue.get_endpoint(endpoint_id)
    return {
        name: value
        for name, value in (template.settings or {}).items()
        if name in SETTING_FIELDS and (name == "preset" or name in endpoint.fields)
    }


def template_document(template: PromptTemplate) -> dict:
    """A template as the API and the studio's script show it."""
    return {
        "slug": template.slug,
        "title": template.title,
        "kind": template.kind,
        "kind_label": template.get_kind_display(),
        "description": template.description,
        "text": template.text,
        "slots": [
            {
                "name": slot["name"],
                "label": slot.get("label", slot["name"]),
                "default": slot.get("default", ""),
                "required": not slot.get("default"),
                "help": slot.get("help", ""),
            }
            for slot in template.slots
        ],
        "preview": template_preview(template),
        "endpoint": template.endpoint_id,
        "settings": template.settings or {},
        "shared": template.shared,
    }


def template_save(
    *,
    user,
    title: str,
    text: str,
    endpoint_id: str,
    settings: Mapping | None = None,
    defaults: Mapping[str, str] | None = None,
) -> PromptTemplate:
    """Save a user's own template; its slots are the {names} in the text."""
    errors = {}
    title = " ".join((title or "").split())[:100]
    if not title:
        errors["title"] = "Give the template a name."
    names = slot_names(text or "")
    if not (text or "").strip():
        errors["text"] = "Write the prompt, with slots as {subject}, {lighting} …"
    try:
        endpoint = catalogue.get_endpoint(endpoint_id)
        if endpoint.retired:
            errors["endpoint"] = f"{endpoint.id} is retired."
    except InputError as exc:
        errors.update(exc.errors)
    if errors:
        raise InputError(errors)
    defaults = dict(defaults or {})
    slots = [
        {
            "name": name,
            "label": name.replace("_", " ").capitalize(),
            "default": " ".join(str(defaults.get(name, "")).split())[:SLOT_MAX_CHARS],
        }
        for name in names
    ]
    base = slugify(title)[:50] or "template"
    slug, counter = base, 1
    while PromptTemplate.objects.filter(owner=user, slug=slug).exists():
        counter += 1
        slug = f"{base}-{counter}"
    clean_settings = {k: v for k, v in dict(settings or {}).items() if k in SETTING_FIELDS}
    return PromptTemplate.objects.create(
        owner=user,
        slug=slug,
        title=title,
        kind=PromptTemplate.Kind.OWN,
        text=text.strip(),
        slots=slots,
        endpoint_id=endpoint_id,
        settings=clean_settings,
        updated_at=timezone.now(),
    )
