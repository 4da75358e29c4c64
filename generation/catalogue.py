"""The Pika endpoints as data: what each accepts, what it costs, and validation of user input.

The endpoint list lives in catalogue.json so that adding or retiring an endpoint, or changing a
price, is a data change. Validation here is the only gate between user input and a charge.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.errors import InputError

from .render import MOTION_PRESETS

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")

# How the motion preset reaches a real model: Pika has no camera argument, so it is phrased
# into the prompt. The offline renderer reads the preset itself.
PRESET_PROMPTS = {
    "static": "",
    "dolly_in": "slow dolly-in camera",
    "dolly_out": "slow dolly-out camera",
    "pan_left": "camera pans left",
    "pan_right": "camera pans right",
    "tilt_up": "camera tilts up",
    "tilt_down": "camera tilts down",
    "orbit": "camera slowly orbits the subject",
}


class PriceUnknown(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    id: str
    title: str
    kind: str
    fields: dict[str, dict]
    media_field: str | None
    media_min: int
    media_max: int
    video_field: str | None
    prices: dict[str, dict[str, str]]
    confirmed: frozenset[str] = field(default_factory=frozenset)
    price_per_5s: bool = False

    @property
    def takes_images(self) -> bool:
        return self.media_max > 0

    @property
    def on_website(self) -> bool:
        """The website form offers one optional image; multi-image and video inputs are API-only."""
        return self.media_max <= 1 and self.video_field is None

    def choices(self, name: str) -> list:
        return self.fields.get(name, {}).get("choices", [])

    def default(self, name: str) -> Any:
        return self.fields.get(name, {}).get("default")


@dataclass(frozen=True)
class Price:
    usd: Decimal
    credits: int
    confirmed: bool


@cache
def _load() -> dict[str, Endpoint]:
    raw = json.loads(CATALOGUE_FILE.read_text())
    endpoints = {}
    for item in raw["endpoints"]:
        media = item["media"]
        endpoints[item["id"]] = Endpoint(
            id=item["id"],
            title=item["title"],
            kind=item["kind"],
            fields=item["fields"],
            media_field=media["field"],
            media_min=media["min"],
            media_max=media["max"],
            video_field=media.get("video_field"),
            prices=item["prices"],
            confirmed=frozenset(item.get("confirmed", [])),
            price_per_5s=item.get("price_per_5s", False),
        )
    return endpoints


def endpoints() -> list[Endpoint]:
    return list(_load().values())


def get_endpoint(endpoint_id: str) -> Endpoint:
    try:
        return _load()[endpoint_id]
    except KeyError:
        known = ", ".join(_load())
        raise InputError(
            {"endpoint": f"Unknown endpoint {endpoint_id!r}. Use one of: {known}."}
        ) from None


DEFAULT_TEXT_ENDPOINT = "fal-ai/pika/v2.2/text-to-video"
DEFAULT_IMAGE_ENDPOINT = "fal-ai/pika/v2.2/image-to-video"


@dataclass(frozen=True)
class ValidInput:
    endpoint: Endpoint
    arguments: dict  # what the provider receives, less the media URLs filled in at submission
    prompt: str
    preset: str
    resolution: str
    duration: int
    aspect_ratio: str | None


def validate_input(
    endpoint_id: str,
    data: Mapping[str, Any],
    *,
    image_count: int = 0,
    has_video: bool = False,
    preset: str = "static",
) -> ValidInput:
    """Check `data` against the endpoint's schema; return the provider arguments with defaults.

    Unknown fields are refused rather than dropped, so a typo never silently changes a render.
    """
    endpoint = get_endpoint(endpoint_id)
    errors: dict[str, str] = {}
    arguments: dict[str, Any] = {}

    for name in data:
        if name not in endpoint.fields:
            allowed = ", ".join(endpoint.fields)
            errors[name] = f"{endpoint.id} does not take {name!r}; it takes: {allowed}."

    for name, spec in endpoint.fields.items():
        value = data.get(name)
        if value is None or value == "":
            if spec.get("required"):
                errors[name] = "This field is required."
            elif spec.get("default") is not None:
                arguments[name] = spec["default"]
            continue
        try:
            arguments[name] = _clean_value(name, spec, value)
        except InputError as exc:
            errors.update(exc.errors)

    if preset not in MOTION_PRESETS:
        errors["preset"] = (
            f"Unknown motion preset {preset!r}. Use one of: {', '.join(MOTION_PRESETS)}."
        )

    if image_count < endpoint.media_min or image_count > endpoint.media_max:
        errors["image"] = _image_count_message(endpoint, image_count)
    if endpoint.video_field and not has_video:
        errors["video"] = "This endpoint needs an input video."
    if has_video and not endpoint.video_field:
        errors["video"] = f"{endpoint.id} does not take a video."

    if endpoint.kind == "frames" and "transitions" not in errors:
        arguments["transitions"] = _frames_transitions(
            endpoint, data.get("transitions"), image_count
        )

    if errors:
        raise InputError(errors)

    prompt = arguments.get("prompt", "")
    if PRESET_PROMPTS.get(preset) and "prompt" in endpoint.fields:
        arguments["prompt"] = (
            f"{prompt}, {PRESET_PROMPTS[preset]}" if prompt else PRESET_PROMPTS[preset]
        )
    return ValidInput(
        endpoint=endpoint,
        arguments=arguments,
        prompt=prompt,
        preset=preset,
        resolution=arguments.get("resolution", "720p"),
        duration=_duration_of(endpoint, arguments),
        aspect_ratio=arguments.get("aspect_ratio"),
    )


def _clean_value(name: str, spec: dict, value: Any) -> Any:
    kind = spec["type"]
    if kind == "text":
        if not isinstance(value, str):
            raise InputError({name: "Must be text."})
        value = value.strip()
        limit = settings.PROMPT_MAX_CHARS
        if len(value) > limit:
            raise InputError({name: f"Too long: {len(value)} characters, the limit is {limit}."})
        if spec.get("required") and not value:
            raise InputError({name: "This field is required."})
        return value
    if kind == "choice":
        if value not in spec["choices"]:
            raise InputError({name: f"{value!r} is not allowed. Use one of: {_listing(spec)}."})
        return value
    if kind == "int_choice":
        try:
            number = int(str(value).removesuffix("s"))
        except ValueError:
            raise InputError(
                {name: f"{value!r} is not a number. Use one of: {_listing(spec)}."}
            ) from None
        if number not in spec["choices"]:
            raise InputError({name: f"{number} is not allowed. Use one of: {_listing(spec)}."})
        return number
    if kind == "transitions":
        return value  # checked with the keyframe count in _frames_transitions
    raise ImproperlyConfigured(f"Catalogue field {name} has unknown type {kind!r}")


def _listing(spec: dict) -> str:
    return ", ".join(str(choice) for choice in spec["choices"])


def _image_count_message(endpoint: Endpoint, count: int) -> str:
    if endpoint.media_max == 0:
        return f"{endpoint.id} takes no image; choose an image-to-video endpoint instead."
    if endpoint.media_min == endpoint.media_max:
        noun = "image" if endpoint.media_min == 1 else "images"
        return f"{endpoint.id} needs exactly {endpoint.media_min} {noun}; got {count}."
    return f"{endpoint.id} needs {endpoint.media_min} to {endpoint.media_max} images; got {count}."


def _frames_transitions(endpoint: Endpoint, raw: Any, image_count: int) -> list[dict]:
    spec = endpoint.fields["transitions"]
    wanted = max(image_count - 1, 1)
    if raw in (None, ""):
        raw = [{"duration": spec["default_duration"]} for _ in range(wanted)]
    if not isinstance(raw, list) or len(raw) != wanted:
        raise InputError(
            {"transitions": f"Give {wanted} transitions, one between each pair of keyframes."}
        )
    cleaned = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise InputError(
                {f"transitions[{index}]": "Must be an object with duration and prompt."}
            )
        raw_seconds = item.get("duration", spec["default_duration"])
        # Whole numbers only (or their digits): 2.7 is not silently 2, 1e999 is not a crash.
        whole = isinstance(raw_seconds, int) and not isinstance(raw_seconds, bool)
        if not whole and not (isinstance(raw_seconds, str) and raw_seconds.strip().isdigit()):
            raise InputError(
                {f"transitions[{index}].duration": "Must be a whole number of seconds."}
            )
        seconds = int(raw_seconds)
        if not spec["min_duration"] <= seconds <= spec["max_duration"]:
            raise InputError(
                {
                    f"transitions[{index}].duration": (
                        f"Must be from {spec['min_duration']} to {spec['max_duration']} seconds."
                    )
                }
            )
        transition = {"duration": seconds}
        if item.get("prompt"):
            transition["prompt"] = _clean_value("prompt", {"type": "text"}, item["prompt"])
        cleaned.append(transition)
    total = sum(item["duration"] for item in cleaned)
    if total > spec["max_total"]:
        raise InputError({"transitions": f"Total {total} s; the limit is {spec['max_total']} s."})
    return cleaned


def _duration_of(endpoint: Endpoint, arguments: dict) -> int:
    if "transitions" in arguments:
        return sum(item["duration"] for item in arguments["transitions"])
    return int(arguments.get("duration", 5))


# --- Prices -----------------------------------------------------------------------------------


@cache
def _price_overrides() -> dict:
    if not settings.FAL_PRICE_OVERRIDES:
        return {}
    try:
        overrides = json.loads(settings.FAL_PRICE_OVERRIDES)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"FAL_PRICE_OVERRIDES is not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured("FAL_PRICE_OVERRIDES must be a JSON object keyed by endpoint id")
    return overrides


def fal_price_usd(endpoint: Endpoint, resolution: str, duration: int) -> tuple[Decimal, bool]:
    """fal's price for one video, and whether fal confirmed it (False: our estimate)."""
    override = _price_overrides().get(endpoint.id)
    if override is not None:
        usd = _lookup(override, resolution, duration, endpoint)
        if usd is not None:
            return usd, True
    usd = _lookup(endpoint.prices, resolution, duration, endpoint)
    if usd is None:
        raise PriceUnknown(
            f"No price for {endpoint.id} at {resolution}, {duration} s; set FAL_PRICE_OVERRIDES."
        )
    confirmed = any(
        key in endpoint.confirmed
        for key in (f"{resolution}/{duration}", f"{resolution}/*", f"*/{duration}", "*/*")
    )
    return usd, confirmed


def _lookup(table: dict, resolution: str, duration: int, endpoint: Endpoint) -> Decimal | None:
    row = table.get(resolution, table.get("*"))
    if not isinstance(row, dict):
        return None
    cell = row.get(str(duration), row.get("*"))
    if cell is None:
        return None
    try:
        usd = Decimal(str(cell))
    except InvalidOperation:
        raise ImproperlyConfigured(f"Price {cell!r} for {endpoint.id} is not a number") from None
    if usd <= 0:
        raise ImproperlyConfigured(f"Price for {endpoint.id} must be positive, not {usd}")
    if endpoint.price_per_5s and str(duration) not in row:
        usd = usd * Decimal(math.ceil(duration / 5))
    return usd


def credits_for_usd(usd: Decimal) -> int:
    markup = Decimal(settings.CREDIT_MARKUP)
    credit_value = Decimal(settings.CREDIT_VALUE_USD)
    return math.ceil(usd * markup / credit_value)


def price_of(valid: ValidInput) -> Price:
    usd, confirmed = fal_price_usd(valid.endpoint, valid.resolution, valid.duration)
    return Price(usd=usd, credits=credits_for_usd(usd), confirmed=confirmed)
