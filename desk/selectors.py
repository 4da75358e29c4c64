"""The staff dashboard's figures (desk.dashboard shows them).

Finished hours come from the rollup tables (desk.rollup); the current hour is counted live from
the generations and the ledger, so the page is never more than a rollup interval behind and
the newest figures are exact. Stage percentiles of today as a whole are those of the last
rollup (percentiles cannot be added up).
"""

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate, TruncHour

from billing.models import LedgerEntry, StripeEvent
from generation.models import Generation, State, Tier
from generation.stages import STAGE_LABELS, TIMING_COLUMNS, stage_durations
from moderation.models import Report
from workflows.models import ProviderCircuit

from .models import GenerationDay, GenerationHour, LedgerHour, RollupRun, StageTiming
from .rollup import FAL_RAN, generation_groups, ledger_rows, stage_summary

# States still moving: the dashboard shows them as one "in flight" figure.
IN_FLIGHT = frozenset(
    {State.QUEUED, State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING}
)


def tier_label(tier: str, free_preview: bool) -> str:
    if tier == Tier.HD:
        return "HD"
    return "Free preview" if free_preview else "Paid preview"


@dataclass
class Period:
    """The figures of one hour, one day, or all the days shown."""

    start: dt.datetime
    states: Counter = field(default_factory=Counter)
    endpoints: Counter = field(default_factory=Counter)
    tiers: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    fal_runs: int = 0
    fal_usd: Decimal = Decimal(0)
    ledger_entries: Counter = field(default_factory=Counter)
    ledger_credits: Counter = field(default_factory=Counter)
    reports: int = 0
    # Paid through Stripe (US cents), by the time of the event that granted the credits.
    stripe_cents: int = 0
    # stage -> (samples, p50 seconds, p95 seconds)
    stages: dict = field(default_factory=dict)

    def add_group(self, row: dict) -> None:
        n = row["n"]
        self.states[row["state"]] += n
        self.endpoints[row["endpoint_id"]] += n
        self.tiers[tier_label(row["tier"], row["free_preview"])] += n
        if row["code"]:
            self.errors[row["code"]] += n
        self.fal_runs += row["runs"]
        self.fal_usd += row["usd"] or Decimal(0)

    def add(self, other: "Period") -> None:
        for name in ("states", "endpoints", "tiers", "errors", "ledger_entries", "ledger_credits"):
            getattr(self, name).update(getattr(other, name))
        self.fal_runs += other.fal_runs
        self.fal_usd += other.fal_usd
        self.reports += other.reports
        self.stripe_cents += other.stripe_cents

    @property
    def generations(self) -> int:
        return sum(self.states.values())

    @property
    def in_flight(self) -> int:
        return sum(n for state, n in self.states.items() if state in IN_FLIGHT)

    @property
    def failure_rate(self) -> float | None:
        """Failed ÷ (succeeded + failed): of the jobs that ran to an end, how many failed."""
        ended = self.states[State.SUCCEEDED] + self.states[State.FAILED]
        return self.states[State.FAILED] / ended if ended else None

    @property
    def free_previews(self) -> int:
        return self.tiers["Free preview"]

    @property
    def captured_credits(self) -> int:
        return self.ledger_credits[LedgerEntry.Kind.CAPTURE]

    @property
    def revenue_usd(self) -> Decimal:
        return self.captured_credits * Decimal(settings.CREDIT_VALUE_USD)

    @property
    def stripe_usd(self) -> Decimal:
        return Decimal(self.stripe_cents) / 100

    @property
    def margin_usd(self) -> Decimal:
        return self.revenue_usd - self.fal_usd


def _hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _key(value, grain: str):
    """A period's key: a date (days) or a naive UTC datetime (hours). Hashing an aware
    datetime asks its time zone for the offset each time, which cost a third of the page."""
    if grain == "day":
        return value.date() if isinstance(value, dt.datetime) else value
    return value.replace(tzinfo=None)


def _periods(starts, *, first, end, grain: str, now: dt.datetime) -> dict[dt.datetime, Period]:
    """Periods (days or hours) from `first` to `end`: rollup rows for finished hours, live
    rows for the current hour."""
    periods = {_key(start, grain): Period(start=start) for start in starts}
    current = _hour(now)
    bucket = TruncDate if grain == "day" else TruncHour

    def period_of(value) -> Period | None:
        return periods.get(_key(value, grain))

    columns = ("endpoint_id", "tier", "free_preview", "state", "error_code")
    sums = {"n": Sum("generations"), "runs": Sum("fal_runs"), "usd": Sum("fal_usd")}
    # Whole days before today from the day table; today's finished hours (or a day's hours)
    # from the hour table: a day row of today would count the current hour too.
    hours_from = first
    if grain == "day":
        hours_from = max(first, _hour(current).replace(hour=0))
        days = (
            GenerationDay.objects.filter(day__gte=first.date(), day__lt=hours_from.date())
            .annotate(bucket=F("day"))
            .values("bucket", *columns)
            .annotate(**sums)
            .order_by()
        )
        for row in days:
            if period := period_of(row["bucket"]):
                period.add_group({**row, "code": row["error_code"]})
    rolled = (
        GenerationHour.objects.filter(hour__gte=hours_from, hour__lt=min(end, current))
        .annotate(bucket=bucket("hour"))
        .values("bucket", *columns)
        .annotate(**sums)
        .order_by()
    )
    for row in rolled:
        if period := period_of(row["bucket"]):
            period.add_group({**row, "code": row["error_code"]})
    ledger = (
        LedgerHour.objects.filter(hour__gte=first, hour__lt=min(end, current))
        .annotate(bucket=bucket("hour"))
        .values("bucket", "kind")
        .annotate(entries=Sum("entries"), credits=Sum("credits"))
        .order_by()
    )
    for row in ledger:
        if period := period_of(row["bucket"]):
            period.ledger_entries[row["kind"]] += row["entries"]
            period.ledger_credits[row["kind"]] += row["credits"]

    if first <= current < end:  # the current hour, live
        live = period_of(current)
        if live is not None:
            rows = (
                generation_groups(Generation.objects.filter(created_at__gte=current))
                .values("endpoint_id", "tier", "free_preview", "state", "code")
                .annotate(
                    n=Count("pk"),
                    runs=Count("pk", filter=FAL_RAN),
                    usd=Sum("fal_price_usd", filter=FAL_RAN),
                )
                .order_by()
            )
            for row in rows:
                live.add_group(row)
            entries = LedgerEntry.objects.filter(created_at__gte=current)
            for row in ledger_rows(entries, TruncHour("created_at")):
                live.ledger_entries[row["kind"]] += row["n"]
                live.ledger_credits[row["kind"]] += row["credits"] or 0

    reports = (
        Report.objects.filter(created_at__gte=first, created_at__lt=end)
        .annotate(bucket=bucket("created_at"))
        .values("bucket")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in reports:
        if period := period_of(row["bucket"]):
            period.reports += row["n"]

    income = (
        StripeEvent.objects.filter(
            created__gte=first, created__lt=end, currency="usd", income_minor__gt=0
        )
        .annotate(bucket=bucket("created"))
        .values("bucket")
        .annotate(cents=Sum("income_minor"))
        .order_by()
    )
    for row in income:
        if period := period_of(row["bucket"]):
            period.stripe_cents += row["cents"]

    timings = StageTiming.objects.filter(grain=grain, start__gte=first, start__lt=end)
    for timing in timings:
        if period := period_of(timing.start):
            period.stages[timing.stage] = (timing.samples, timing.p50, timing.p95)
    if grain == "hour" and (live := period_of(current)) is not None:
        rows = Generation.objects.filter(created_at__gte=current).values_list(*TIMING_COLUMNS)
        live.stages = stage_summary(stage_durations(rows))
    return periods


def dashboard(*, days: int, day: dt.date, now: dt.datetime) -> dict:
    """Everything the page shows: the last `days` days, the hours of `day`, and the state of
    the provider circuit."""
    today = now.date()
    first_day = today - dt.timedelta(days=days - 1)
    day_starts = [_midnight(first_day + dt.timedelta(days=n)) for n in range(days)]
    daily = _periods(
        day_starts,
        first=day_starts[0],
        end=_midnight(today + dt.timedelta(days=1)),
        grain="day",
        now=now,
    )
    hours_shown = 24 if day < today else now.hour + 1
    hour_starts = [_midnight(day) + dt.timedelta(hours=n) for n in range(hours_shown)]
    hourly = _periods(
        hour_starts,
        first=hour_starts[0],
        end=hour_starts[-1] + dt.timedelta(hours=1),
        grain="hour",
        now=now,
    )
    totals = Period(start=day_starts[0])
    for period in daily.values():
        totals.add(period)
    last_run = RollupRun.objects.filter(name="dashboard").first()
    return {
        "daily": list(daily.values()),
        "hourly": list(hourly.values()),
        "totals": totals,
        "held_now": Generation.objects.filter(state=State.HELD).count(),
        "open_reports": Report.objects.filter(status=Report.Status.OPEN).count(),
        "circuits": list(ProviderCircuit.objects.order_by("backend")),
        "rolled_up_at": last_run.ran_at if last_run else None,
        "stage_labels": STAGE_LABELS,
        "billing_on": settings.BILLING_ENABLED,
    }
