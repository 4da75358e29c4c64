"""Prompt lint before spend: hints that explain, never refuse.

Pure functions of the request (prompt, endpoint, camera preset, image count, shape). Each hint
has a stable rule id, a message in plain words and, where one exists, a one-click fix:
{"field": "preset", "value": "dolly_in"} sets a field, {"field": "prompt", "value": "…"}
replaces the prompt. The studio shows them as you type (/generate/hints/); /api/v1/estimate
returns them as `hints`. tests/creative/test_lint.py has a positive and a negative example
of every rule.
"""

import re
from dataclasses import asdict, dataclass, field

from generation import catalogue

STYLES = (
    "cinematic", "anime", "cartoon", "watercolor", "watercolour", "oil painting", "pixel art",
    "claymation", "stop motion", "noir", "cyberpunk", "steampunk", "vaporwave", "synthwave",
    "photorealistic", "hyperrealistic", "3d render", "low poly", "sketch", "pencil drawing",
    "comic book", "pixar", "ghibli", "vintage", "retro", "surreal", "impressionist",
    "documentary", "film noir", "minimalist", "baroque", "art deco", "ukiyo-e", "vhs",
)  # fmt: skip
CAMERA_WORDS = (
    "camera", "dolly", "pan", "pans", "panning", "tilt", "tilts", "orbit", "orbits", "zoom",
    "tracking", "crane", "handheld", "drone", "aerial", "push-in", "push in", "pull back",
    "static shot", "locked-off", "tripod", "fpv", "glides", "sweeps",
)  # fmt: skip
STRONG_MOTION = (
    "explodes", "explosion", "running", "runs", "sprinting", "jumping", "jumps", "spinning",
    "spins", "dancing", "fast", "rapid", "rapidly", "chaotic", "crashing", "crashes", "whip pan",
    "flying", "fighting", "violently", "shaking", "tornado", "rushing",
)  # fmt: skip
STATIC_WORDS = ("static camera", "static shot", "locked-off", "locked off", "still camera",
                "tripod", "camera does not move", "no camera movement")  # fmt: skip
MOVING_WORDS = ("orbit", "orbits", "dolly", "pan ", "pans", "panning", "tilt", "tilts",
                "tracking", "crane", "zoom", "push-in", "fpv", "sweeps")  # fmt: skip
PORTRAIT_WORDS = ("portrait", "face", "headshot", "selfie", "close-up of a person")
# Words that describe the picture but are nobody and nothing: what is left once these (and
# short joining words) are taken out must name a subject.
NOT_A_SUBJECT = (
    set(
        """a an the of in on at with and or to by for from into over under very slow slowly soft
    gentle light lighting lit golden hour sunset dawn dusk night day morning evening beautiful
    stunning epic dramatic high quality detailed 4k 8k hd ultra realistic style shot wide close
    up closeup medium angle low view scene background mood atmosphere moody warm cold cool
    bright dark colorful colourful vibrant motion moving camera""".split()  # noqa: SIM905
    )
    | {w for style in STYLES for w in style.split()}
    | {w for c in CAMERA_WORDS for w in c.split()}
)

MAX_STYLES = 2
MIN_WORDS = 4
# Words past which Pika starts to drop parts of a prompt; an image input carries the picture,
# so its prompt needs fewer.
MAX_WORDS = {"text": 70, "image": 45}
MAX_WORDS_OTHER = 60


@dataclass(frozen=True)
class Hint:
    rule: str
    message: str
    fix: dict | None = field(default=None)

    def as_dict(self) -> dict:
        return asdict(self)


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(phrase.strip())}(?![a-z])", text) is not None


def _found(text: str, phrases) -> list[str]:
    return [p for p in phrases if _has(text, p)]


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z0-9'-]+", prompt.lower())


def prompt_hints(
    prompt: str,
    *,
    endpoint_id: str = catalogue.DEFAULT_TEXT_ENDPOINT,
    preset: str = "static",
    image_count: int = 0,
    aspect_ratio: str = "",
) -> list[Hint]:
    """Every hint for this request, in the order the rules are listed here."""
    try:
        endpoint = catalogue.get_endpoint(endpoint_id)
    except Exception:  # noqa: BLE001 - an unknown endpoint is the validation's refusal, not ours
        return []
    if "prompt" not in endpoint.fields:
        return []
    text = " ".join((prompt or "").lower().split())
    words = _words(text)
    hints: list[Hint] = []
    image_input = image_count > 0 or endpoint.media_min > 0

    styles = []
    for style in STYLES:  # "film noir" counts once, not as "film noir" and "noir"
        if _has(text, style) and not any(style in other and style != other for other in styles):
            styles = [s for s in styles if s not in style] + [style]
    if len(styles) > MAX_STYLES:
        keep, drop = styles[:MAX_STYLES], styles[MAX_STYLES:]
        fixed = prompt
        for style in drop:
            fixed = re.sub(rf",?\s*(?<![a-z]){re.escape(style)}(?![a-z])", "", fixed, flags=re.I)
        hints.append(
            Hint(
                "too_many_styles",
                f"{len(styles)} styles at once ({', '.join(styles)}): the model blends them into "
                f"none. Keep one or two, e.g. {' and '.join(keep)}.",
                {"field": "prompt", "value": " ".join(fixed.split()).strip(", ")},
            )
        )

    if words and preset == "static" and not _found(text, CAMERA_WORDS):
        hints.append(
            Hint(
                "no_camera",
                "Nothing says how the camera moves, so the model picks for you. Name a move "
                '("slow dolly-in") or choose one under Camera.',
                {"field": "preset", "value": "dolly_in"},
            )
        )

    portrait = aspect_ratio == "9:16" and bool(_found(text, PORTRAIT_WORDS))
    strong = _found(text, STRONG_MOTION)
    if strong and (image_input or portrait or _found(text, PORTRAIT_WORDS)):
        calmer = prompt
        for word in strong:
            calmer = re.sub(rf"(?<![a-z]){re.escape(word)}(?![a-z])", "", calmer, flags=re.I)
        calmer = " ".join(calmer.split()).strip(", ")
        subtle = "subtle, gentle motion"
        hints.append(
            Hint(
                "strong_motion_on_still",
                f"Strong motion ({', '.join(strong)}) on a "
                f"{'still image' if image_input else 'portrait'} warps faces and shapes. "
                "Ask for subtle motion instead.",
                {"field": "prompt", "value": f"{calmer}, {subtle}" if calmer else subtle},
            )
        )

    if words and len(words) < MIN_WORDS:
        hints.append(
            Hint(
                "too_short",
                f"{len(words)} word{'s' if len(words) != 1 else ''} leave most of the shot to "
                "chance. Add the setting, the light and what moves.",
            )
        )
    limit = MAX_WORDS.get(endpoint.kind, MAX_WORDS_OTHER)
    if len(words) > limit:
        hints.append(
            Hint(
                "too_long",
                f"{len(words)} words: {endpoint.title} follows about {limit}; the rest tends to "
                "be ignored. Keep the subject, the action and the camera.",
            )
        )

    static = _found(text, STATIC_WORDS)
    moving = _found(f"{text} ", MOVING_WORDS)
    if static and (moving or preset != "static"):
        what = ", ".join(m.strip() for m in moving) or f"the {preset.replace('_', ' ')} camera"
        cleaned = prompt
        for word in static:
            cleaned = re.sub(rf",?\s*(?<![a-z]){re.escape(word)}(?![a-z])", "", cleaned, flags=re.I)
        hints.append(
            Hint(
                "contradiction",
                f'"{static[0]}" and {what} contradict each other: the camera cannot stand '
                "still and move. Keep one.",
                {"field": "prompt", "value": " ".join(cleaned.split()).strip(", ")},
            )
        )

    if words and not image_input:
        parts = [part for word in words for part in word.split("-") if part]
        meaningful = [w for w in parts if w not in NOT_A_SUBJECT and not w.isdigit()]
        if not meaningful:
            hints.append(
                Hint(
                    "missing_subject",
                    "Style, light and camera but no subject: say who or what is in the shot.",
                )
            )
    return hints


RULES = (
    "too_many_styles",
    "no_camera",
    "strong_motion_on_still",
    "too_short",
    "too_long",
    "contradiction",
    "missing_subject",
)
