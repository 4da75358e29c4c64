"""Fill the dashboard's hourly tables (desk.models) from the generations and the ledger.

`rollup_days` recomputes whole UTC days from their rows: it deletes and writes again, in one
transaction, so running it twice, late, or in two workers at once gives the same tables.
`rollup_recent` (every few minutes, desk.schedules) recomputes the days that can still change:
the last DASHBOARD_ROLLUP_HOURS, and the days of older generations that ended since its last
run (a held prompt approved days later). Generations are counted in the hour they were
created; ledger entries in the hour they were made.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from billing.models import LedgerEntry
from generation.models import Generation, State
from generation.stages import TIMING_COLUMNS, percentile, stage_durations

from .models import GenerationDay, GenerationHour, LedgerHour, RollupRun, StageTiming

# fal bills a job it rendered to the end: it reached finalizing (ours to copy), whatever
# happened to it afterwards. Its catalogue price is the row's fal_price_usd.
FAL_RAN = Q(backend="fal", finalizing_at__isnull=False)


def stage_summary(durations: dict[str, list[float]]) -> dict[str, tuple[int, float, float]]:
    """(samples, p50, p95) of each stage that has samples."""
    return {
        key: (len(values), percentile(values, 50), percentile(values, 95))
        for key, values in durations.items()
        if values
    }


def generation_groups(queryset):
    """Counts, fal runs and fal spend of `queryset` by endpoint, tier, free preview, state and
    error code (failed rows only), plus whatever the caller annotated and named in `values`."""
    return queryset.annotate(
        code=Case(When(state=State.FAILED, then=F("error_code")), default=Value(""))
    )


def _generation_rows(start, end):
    return (
        generation_groups(Generation.objects.filter(created_at__gte=start, created_at__lt=end))
        .annotate(bucket=TruncHour("created_at"))
        .values("bucket", "endpoint_id", "tier", "free_preview", "state", "code")
        .annotate(
            n=Count("pk"),
            runs=Count("pk", filter=FAL_RAN),
            usd=Sum("fal_price_usd", filter=FAL_RAN),
        )
        .order_by()
    )


def ledger_rows(queryset, bucket):
    """Entries and credits of `queryset` by `bucket` (an expression) and kind. A capture moves
    no balance (its hold took the credits), so it counts its hold's credits."""
    hold = LedgerEntry.objects.filter(
        generation_id=OuterRef("generation_id"), kind=LedgerEntry.Kind.HOLD
    ).values("amount")[:1]
    return (
        queryset.annotate(
            bucket=bucket,
            moved=Case(
                When(kind=LedgerEntry.Kind.CAPTURE, then=Value(0) - Subquery(hold)),
                default=F("amount"),
                output_field=IntegerField(),
            ),
        )
        .values("bucket", "kind")
        .annotate(n=Count("pk"), credits=Sum("moved"))
        .order_by()
    )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@transaction.atomic
def rollup_days(*, days) -> None:
    """Recompute every hourly figure of these UTC days (dates) from their rows."""
    for day in sorted(set(days)):
        start, end = _midnight(day), _midnight(day + dt.timedelta(days=1))
        GenerationHour.objects.filter(hour__gte=start, hour__lt=end).delete()
        GenerationHour.objects.bulk_create(
            GenerationHour(
                hour=row["bucket"],
                endpoint_id=row["endpoint_id"],
                tier=row["tier"],
                free_preview=row["free_preview"],
                state=row["state"],
                error_code=row["code"],
                generations=row["n"],
                fal_runs=row["runs"],
                fal_usd=row["usd"] or Decimal(0),
            )
            for row in _generation_rows(start, end)
        )
        GenerationDay.objects.filter(day=day).delete()
        day_rows = (
            GenerationHour.objects.filter(hour__gte=start, hour__lt=end)
            .values(*GenerationDay.KEY)
            .annotate(
                generations=Sum("generations"), fal_runs=Sum("fal_runs"), fal_usd=Sum("fal_usd")
            )
            .order_by()
        )
        GenerationDay.objects.bulk_create(GenerationDay(day=day, **row) for row in day_rows)
        LedgerHour.objects.filter(hour__gte=start, hour__lt=end).delete()
        entries = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
        LedgerHour.objects.bulk_create(
            LedgerHour(
                hour=row["bucket"], kind=row["kind"], entries=row["n"], credits=row["credits"]
            )
            for row in ledger_rows(entries, TruncHour("created_at"))
        )
        _timings(start, end)


def _timings(start: dt.datetime, end: dt.datetime) -> None:
    rows = Generation.objects.filter(created_at__gte=start, created_at__lt=end).values_list(
        *TIMING_COLUMNS
    )
    by_hour = defaultdict(list)
    for row in rows.iterator(chunk_size=5000):
        by_hour[row[1].replace(minute=0, second=0, microsecond=0)].append(row)
    StageTiming.objects.filter(start__gte=start, start__lt=end).delete()
    timings = []
    for grain, periods in (
        (StageTiming.Grain.HOUR, by_hour.items()),
        (StageTiming.Grain.DAY, [(start, [row for rows in by_hour.values() for row in rows])]),
    ):
        for period, period_rows in periods:
            for stage, (samples, p50, p95) in stage_summary(stage_durations(period_rows)).items():
                timings.append(
                    StageTiming(
                        grain=grain, start=period, stage=stage, samples=samples, p50=p50, p95=p95
                    )
                )
    StageTiming.objects.bulk_create(timings)


def days_to_recompute(*, now: dt.datetime, since: dt.datetime | None) -> set[dt.date]:
    """The days of the last DASHBOARD_ROLLUP_HOURS, and those of rows that ended since `since`
    (the last run, a few minutes' margin for transactions that were still open)."""
    first = (now - dt.timedelta(hours=settings.DASHBOARD_ROLLUP_HOURS)).date()
    days = {first + dt.timedelta(days=n) for n in range((now.date() - first).days + 1)}
    if since is not None:
        ended = (
            Generation.objects.filter(
                finished_at__gte=since - dt.timedelta(minutes=5),
                created_at__lt=_midnight(first),
            )
            .annotate(day=TruncDate("created_at"))
            .values_list("day", flat=True)
            .distinct()
        )
        days.update(ended)
    return days


def rollup_recent(*, now: dt.datetime | None = None) -> set[dt.date]:
    """The periodic rollup; returns the days it recomputed."""
    now = now or timezone.now()
    last = RollupRun.objects.filter(name="dashboard").first()
    days = days_to_recompute(now=now, since=last.ran_at if last else None)
    rollup_days(days=days)
    RollupRun.objects.update_or_create(name="dashboard", defaults={"ran_at": now})
    return days
