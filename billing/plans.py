"""Plans and credit packs as data (README "Credits, plans and billing").

The defaults below are examples; every number can be changed without code through
`BILLING_PLAN_OVERRIDES` / `BILLING_PACK_OVERRIDES` (JSON keyed by code) and the Stripe price
ids come from `STRIPE_PRICE_*`. Read through `get_plan()` / `plans()` / `packs()` every time, so
settings overrides (and tests) take effect at once.
"""

import json
from dataclasses import dataclass, fields, replace
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FREE = "free"
CREATOR = "creator"
STUDIO = "studio"

# Resolutions from smallest to largest; a plan allows everything up to its maximum.
RESOLUTIONS = ("480p", "720p", "1080p")
# A free preview is this resolution (or smaller) and at most this long.
PREVIEW_RESOLUTION = "720p"
PREVIEW_MAX_SECONDS = 5


@dataclass(frozen=True)
class Plan:
    code: str
    name: str
    usd_cents_per_month: int
    monthly_credits: int
    max_resolution: str
    max_duration: int
    max_in_flight: int
    daily_free_previews: int
    max_generations_per_day: int = 0  # 0: no daily cap
    stripe_price: str = ""

    @property
    def paid(self) -> bool:
        return self.usd_cents_per_month > 0

    def allows_resolution(self, resolution: str) -> bool:
        return _rank(resolution) <= _rank(self.max_resolution)

    @property
    def price_label(self) -> str:
        return f"${self.usd_cents_per_month // 100}.{self.usd_cents_per_month % 100:02d}/month"

    def summary(self) -> str:
        return (
            f"{self.max_resolution}, up to {self.max_duration} s, "
            f"{self.max_in_flight} job{'s' if self.max_in_flight != 1 else ''} at a time"
        )


@dataclass(frozen=True)
class Pack:
    code: str
    name: str
    credits: int
    usd_cents: int
    stripe_price: str = ""

    @property
    def price_label(self) -> str:
        return f"${self.usd_cents // 100}.{self.usd_cents % 100:02d}"


_PLANS = (
    Plan(FREE, "Free", 0, 0, "720p", 5, 1, 3, max_generations_per_day=20),
    Plan(CREATOR, "Creator", 1200, 1500, "1080p", 10, 3, 10, max_generations_per_day=300),
    Plan(STUDIO, "Studio", 3900, 6000, "1080p", 10, 8, 30, max_generations_per_day=2000),
)
_PACKS = (
    Pack("small", "500 credits", 500, 500),
    Pack("medium", "1,200 credits", 1200, 1000),
    Pack("large", "3,500 credits", 3500, 2500),
)


def _rank(resolution: str) -> int:
    try:
        return RESOLUTIONS.index(resolution)
    except ValueError:
        return len(RESOLUTIONS)  # unknown: larger than anything a plan allows


def _overrides(name: str) -> dict:
    return _parse_overrides(name, getattr(settings, name, "") or "")


def _parse_overrides(name: str, raw) -> dict:
    if not raw:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object keyed by code")
    return value


def _apply(item, changes: dict, setting: str):
    allowed = {f.name for f in fields(item)} - {"code"}
    unknown = set(changes) - allowed
    if unknown:
        raise ImproperlyConfigured(f"{setting}[{item.code!r}] has unknown keys: {sorted(unknown)}")
    return replace(item, **changes)


def plans() -> dict[str, Plan]:
    # Built once per combination of the settings it reads (several times per request before).
    raw = getattr(settings, "BILLING_PLAN_OVERRIDES", "") or ""
    return dict(
        _plans_for(
            raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True),
            settings.STRIPE_PRICE_CREATOR,
            settings.STRIPE_PRICE_STUDIO,
            settings.FREE_DAILY_PREVIEWS,
        )
    )


@lru_cache(maxsize=16)
def _plans_for(
    raw_overrides: str, creator_price: str, studio_price: str, free_daily_previews: int
) -> dict[str, Plan]:
    overrides = _parse_overrides("BILLING_PLAN_OVERRIDES", raw_overrides)
    prices = {CREATOR: creator_price, STUDIO: studio_price}
    result = {}
    for plan in _PLANS:
        plan = replace(plan, stripe_price=prices.get(plan.code, ""))
        if plan.code == FREE:
            plan = replace(plan, daily_free_previews=free_daily_previews)
        result[plan.code] = _apply(plan, overrides.get(plan.code, {}), "BILLING_PLAN_OVERRIDES")
    return result


def get_plan(code: str) -> Plan:
    return plans().get(code) or plans()[FREE]


def packs() -> dict[str, Pack]:
    overrides = _overrides("BILLING_PACK_OVERRIDES")
    prices = {
        "small": settings.STRIPE_PRICE_PACK_SMALL,
        "medium": settings.STRIPE_PRICE_PACK_MEDIUM,
        "large": settings.STRIPE_PRICE_PACK_LARGE,
    }
    return {
        pack.code: _apply(
            replace(pack, stripe_price=prices.get(pack.code, "")),
            overrides.get(pack.code, {}),
            "BILLING_PACK_OVERRIDES",
        )
        for pack in _PACKS
    }


def plan_for_stripe_price(price_id: str) -> Plan | None:
    for plan in plans().values():
        if price_id and plan.stripe_price == price_id:
            return plan
    return None


def cheapest_plan_allowing(*, resolution: str | None = None, duration: int | None = None) -> Plan:
    """The first plan (in price order) that allows this resolution and duration."""
    for plan in sorted(plans().values(), key=lambda p: p.usd_cents_per_month):
        if resolution and not plan.allows_resolution(resolution):
            continue
        if duration and duration > plan.max_duration:
            continue
        return plan
    return None
