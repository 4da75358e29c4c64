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
class PriceRule:
    """How fal bills an endpoint (catalogue.json's "price").

    per_video: `usd` is a table resolution -> duration -> USD ("*" matches any);
    per_second: `usd` maps resolution -> USD a second, billed for at least `min_seconds`;
    unpublished: no price yet, so the endpoint is refused until FAL_PRICE_OVERRIDES prices it.
    `source` says where the figures come from; `confirmed` lists the cells fal confirmed.
    """

    rule: str
    usd: dict
    source: str
    confirmed: frozenset[str] = field(default_factory=frozenset)
    min_seconds: int = 0


PRICE_RULES = ("per_video", "per_second", "unpublished")


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
    price: PriceRule
    # Retired: fal no longer serves it. Refused for new requests and left out of every list of
    # choices; generations made with it are still shown and billed at their recorded price.
    retired: bool = False

    @property
    def takes_images(self) -> bool:
        return self.media_max > 0

    @property
    def on_website(self) -> bool:
        """Every endpoint still served is on the website (studio/forms.py has a field for each
        kind of input: several ordered images, keyframe transitions, an input video)."""
        return not self.retired

    def choices(self, name: str) -> list:
        return self.fields.get(name, {}).get("choices", [])

    def default(self, name: str) -> Any:
        return self.fields.get(name, {}).get("default")


@dataclass(frozen=True)
class Price:
    usd: Decimal
    credits: int
    confirmed: bool


def _price_rule(endpoint_id: str, raw: dict) -> PriceRule:
    rule = raw.get("rule")
    if rule not in PRICE_RULES:
        raise ImproperlyConfigured(
            f"{endpoint_id}: price rule {rule!r} is not one of {PRICE_RULES}"
        )
    if not raw.get("source"):
        raise ImproperlyConfigured(f"{endpoint_id}: every price says where it comes from (source)")
    usd = {"per_video": raw.get("usd"), "per_second": raw.get("usd_per_second")}.get(rule) or {}
    if rule != "unpublished" and not isinstance(usd, dict):
        raise ImproperlyConfigured(f"{endpoint_id}: {rule} price needs its table")
    return PriceRule(
        rule=rule,
        usd=usd,
        source=raw["source"],
        confirmed=frozenset(raw.get("confirmed", [])),
        min_seconds=int(raw.get("min_seconds", 0)),
    )


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
            price=_price_rule(item["id"], item["price"]),
            retired=bool(item.get("retired", False)),
        )
    return endpoints


def endpoints(*, include_retired: bool = False) -> list[Endpoint]:
    """The endpoints a new request may use (with include_retired, every one we ever had)."""
    return [e for e in _load().values() if include_retired or not e.retired]


def get_endpoint(endpoint_id: str) -> Endpoint:
    """Any catalogued endpoint, retired ones included (existing generations refer to them)."""
    try:
        return _load()[endpoint_id]
    except KeyError:
        known = ", ".join(endpoint.id for endpoint in endpoints())
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
    if endpoint.retired:
        known = ", ".join(e.id for e in endpoints())
        raise InputError(
            {
                "endpoint": f"{endpoint.id} has been retired by the provider and takes no new "
                f"requests. Use one of: {known}."
            }
        )
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
    """fal's price for one video, and whether fal confirmed it (False: our estimate).

    FAL_PRICE_OVERRIDES wins over the catalogue: `{"endpoint id": {"720p": {"5": "0.20"}}}`
    prices whole videos, `{"endpoint id": {"per_second": {"720p": "0.04"}}}` seconds (billed
    for at least the catalogue's min_seconds).
    """
    override = _price_overrides().get(endpoint.id)
    if isinstance(override, dict):
        if "per_second" in override:
            rule = PriceRule(
                "per_second",
                override["per_second"],
                "FAL_PRICE_OVERRIDES",
                min_seconds=endpoint.price.min_seconds,
            )
        else:
            rule = PriceRule("per_video", override, "FAL_PRICE_OVERRIDES")
        usd = _rule_price(rule, resolution, duration, endpoint)
        if usd is not None:
            return usd, True
    usd = _rule_price(endpoint.price, resolution, duration, endpoint)
    if usd is None:
        if endpoint.price.rule == "unpublished":
            raise PriceUnknown(
                f"fal has published no price for {endpoint.id}; it can be used once "
                "FAL_PRICE_OVERRIDES prices it."
            )
        raise PriceUnknown(
            f"No price for {endpoint.id} at {resolution}, {duration} s; set FAL_PRICE_OVERRIDES."
        )
    confirmed = any(
        key in endpoint.price.confirmed
        for key in (f"{resolution}/{duration}", f"{resolution}/*", f"*/{duration}", "*/*")
    )
    return usd, confirmed


def _rule_price(
    rule: PriceRule, resolution: str, duration: int, endpoint: Endpoint
) -> Decimal | None:
    if rule.rule == "per_video":
        row = rule.usd.get(resolution, rule.usd.get("*"))
        cell = row.get(str(duration), row.get("*")) if isinstance(row, dict) else None
        return _usd(cell, endpoint)
    if rule.rule == "per_second":
        rate = _usd(rule.usd.get(resolution, rule.usd.get("*")), endpoint)
        if rate is None:
            return None
        return rate * max(duration, rule.min_seconds)
    return None  # unpublished


def _usd(cell, endpoint: Endpoint) -> Decimal | None:
    if cell is None:
        return None
    try:
        usd = Decimal(str(cell))
    except InvalidOperation:
        raise ImproperlyConfigured(f"Price {cell!r} for {endpoint.id} is not a number") from None
    if not usd.is_finite() or usd <= 0:
        raise ImproperlyConfigured(f"Price for {endpoint.id} must be positive, not {usd}")
    return usd


def is_priced(endpoint: Endpoint) -> bool:
    """Whether a request with the endpoint's defaults has a price (catalogue or override)."""
    resolution = endpoint.default("resolution") or "720p"
    try:
        fal_price_usd(endpoint, resolution, endpoint.default("duration") or 5)
    except PriceUnknown:
        return False
    return True


def credits_for_usd(usd: Decimal) -> int:
    markup = Decimal(settings.CREDIT_MARKUP)
    credit_value = Decimal(settings.CREDIT_VALUE_USD)
    return math.ceil(usd * markup / credit_value)


def price_of(valid: ValidInput) -> Price:
    usd, confirmed = fal_price_usd(valid.endpoint, valid.resolution, valid.duration)
    return Price(usd=usd, credits=credits_for_usd(usd), confirmed=confirmed)
