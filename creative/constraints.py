"""Built-in constraints: what a render should never show, added to its negative prompt.

People read them as "no text, no watermark, no logo, no distortion, stable frames"; a negative
prompt lists what to avoid, so they are written there as the things themselves ("text,
watermark, …, flicker"). Writing "no text" into a negative prompt would ask the model to avoid
"no text". On by default per user (CreativePreference); shown and editable before a render,
and the terms actually added are recorded on the row (Generation.constraints).
"""

from dataclasses import dataclass

from generation import catalogue

from .models import CreativePreference

# (as people read it, as the negative prompt says it)
DEFAULT_ITEMS = (
    ("no text", "text"),
    ("no watermark", "watermark"),
    ("no logo", "logo"),
    ("no distortion", "distortion"),
    ("stable frames", "flicker"),
)
DEFAULT_TERMS = ", ".join(term for _, term in DEFAULT_ITEMS)
DEFAULT_LABEL = ", ".join(label for label, _ in DEFAULT_ITEMS)
MAX_CHARS = 300


@dataclass(frozen=True)
class Choice:
    on: bool
    terms: str  # what is added to the negative prompt when on


def preference_of(user) -> Choice:
    """The user's default: on, with the standard terms, unless they changed it."""
    pref = CreativePreference.objects.filter(user=user).first() if user is not None else None
    if pref is None:
        return Choice(on=True, terms=DEFAULT_TERMS)
    return Choice(on=pref.constraints_on, terms=pref.constraints_text or DEFAULT_TERMS)


def preference_set(*, user, on: bool, terms: str = "") -> CreativePreference:
    terms = clean_terms(terms)
    pref, _ = CreativePreference.objects.update_or_create(
        user=user,
        defaults={
            "constraints_on": on,
            "constraints_text": "" if terms == DEFAULT_TERMS else terms,
        },
    )
    return pref


def clean_terms(terms: str | None) -> str:
    """One line, comma-separated, at most MAX_CHARS; empty means the default terms."""
    parts = [" ".join(part.split()) for part in (terms or "").split(",")]
    cleaned = ", ".join(part for part in parts if part)[:MAX_CHARS]
    return cleaned or DEFAULT_TERMS


def resolve(user, *, on: bool | None = None, terms: str | None = None) -> Choice:
    """A request's constraints: what it asked for, else the user's default."""
    default = preference_of(user)
    return Choice(
        on=default.on if on is None else on,
        terms=default.terms if terms in (None, "") else clean_terms(terms),
    )


def takes_constraints(endpoint_id: str) -> bool:
    """Only an endpoint with a negative prompt can take them (the catalogue says which)."""
    return "negative_prompt" in catalogue.get_endpoint(endpoint_id).fields


def with_constraints(negative_prompt: str, terms: str) -> str:
    """The negative prompt with each term added once (a term already there is not repeated)."""
    negative = (negative_prompt or "").strip()
    have = {part.strip().lower() for part in negative.split(",") if part.strip()}
    extra = [t.strip() for t in terms.split(",") if t.strip() and t.strip().lower() not in have]
    return ", ".join(filter(None, [negative.strip(", "), *extra]))
