"""What a plan allows and what an account has used of it today (docs/architecture.md "Money").

Reads only: the checks raise PlanLimit with a message that names a plan that allows more; the
counters they read are moved by billing.holds.
"""

import datetime as dt

from django.utils import timezone

from . import plans
from .errors import PlanLimit, UsageLimit
from .models import CreditAccount
from .services import account_for


def today(now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(dt.UTC).date()


def is_preview(resolution: str, duration: int) -> bool:
    preview = plans.get_plan(plans.FREE)  # the preview shape is the same on every plan
    return duration <= plans.PREVIEW_MAX_SECONDS and preview.allows_resolution(resolution)


def usage_today(account: CreditAccount, *, day: dt.date | None = None) -> tuple[int, int]:
    """(generations made, free previews used) on `day` (today, UTC), from the counters."""
    if account.usage_day != (day or today()):
        return 0, 0
    return account.made_today, account.free_today


def allowance_left(account: CreditAccount) -> int:
    return max(account.plan_info.daily_free_previews - usage_today(account)[1], 0)


def plan_check(
    *,
    user,
    resolution: str,
    duration: int,
    hd_rerender: bool = False,
    account: CreditAccount | None = None,
) -> None:
    """Refuse what the user's plan does not allow, saying which plan does.

    "Render in HD" of one's own preview is allowed on every plan (paid HD): only the
    resolution gate is lifted, and the duration is the preview's. `account`: the user's
    account when the caller has it already (read for them otherwise).
    """
    plan = (account or account_for(user)).plan_info
    if not hd_rerender and not plan.allows_resolution(resolution):
        better = plans.cheapest_plan_allowing(resolution=resolution)
        raise PlanLimit(
            f"{resolution} is not on the {plan.name} plan (up to {plan.max_resolution})."
            + (f" {better.name} allows it." if better else "")
            + (" Or render a preview and use Render in HD." if plan.code == plans.FREE else ""),
            field="resolution",
            allowed_by=better.code if better else None,
        )
    if duration > plan.max_duration:
        better = plans.cheapest_plan_allowing(duration=duration)
        raise PlanLimit(
            f"{duration} s videos are not on the {plan.name} plan (up to {plan.max_duration} s)."
            + (f" {better.name} allows them." if better else ""),
            field="duration",
            allowed_by=better.code if better else None,
        )


def _next_plan(better_than) -> plans.Plan | None:
    by_price = sorted(plans.plans().values(), key=lambda p: p.usd_cents_per_month)
    return next((p for p in by_price if better_than(p)), None)


# When a job in flight may have finished: the length of a short render at the provider. A guess
# (no one knows when a job ends), so a client retrying after it does not hammer the API.
IN_FLIGHT_RETRY_SECONDS = 30


def check_in_flight(plan: plans.Plan, running: int) -> None:
    if running < plan.max_in_flight:
        return
    better = _next_plan(lambda p: p.max_in_flight > plan.max_in_flight)
    raise UsageLimit(
        f"The {plan.name} plan runs {plan.max_in_flight} "
        f"job{'s' if plan.max_in_flight != 1 else ''} at a time and you have {running} "
        "in progress; wait for one to finish."
        + (f" {better.name} runs {better.max_in_flight} at once." if better else ""),
        limit="max_in_flight",
        allowed=plan.max_in_flight,
        retry_after=IN_FLIGHT_RETRY_SECONDS,
        allowed_by=better.code if better else None,
    )


def check_daily_cap(plan: plans.Plan, made_today: int) -> None:
    cap = plan.max_generations_per_day
    if not cap or made_today < cap:
        return
    better = _next_plan(lambda p: p.max_generations_per_day > cap or p.max_generations_per_day == 0)
    now = timezone.now().astimezone(dt.UTC)
    midnight = dt.datetime.combine(today(now) + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    raise UsageLimit(
        f"The {plan.name} plan allows {cap} generation{'s' if cap != 1 else ''} a day (UTC) "
        "and you have reached it."
        + (f" {better.name} allows {better.max_generations_per_day}." if better else ""),
        limit="max_generations_per_day",
        allowed=cap,
        retry_after=max(1, int((midnight - now).total_seconds())),
        allowed_by=better.code if better else None,
    )
