"""The staff dashboard's hourly figures and the state of each staff alert.

The dashboard reads these small tables rather than the generations and the ledger themselves,
so it answers as fast on a million generations as on a hundred (docs/architecture.md
"Staff dashboard"). desk.rollup fills them; every row can be recomputed from its sources at
any time, so the job that does it may run twice or late without harm.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class GenerationCounts(models.Model):
    """What GenerationHour and GenerationDay count, per endpoint, tier, free-preview flag,
    state (at the last rollup) and error code (failed rows only)."""

    endpoint_id = models.CharField(max_length=100)
    tier = models.CharField(max_length=8)
    free_preview = models.BooleanField()
    state = models.CharField(max_length=16)
    error_code = models.CharField(max_length=40, blank=True)
    generations = models.PositiveIntegerField()
    # Of those, the ones fal rendered to the end (it bills them) and their catalogue price.
    fal_runs = models.PositiveIntegerField()
    fal_usd = models.DecimalField(max_digits=14, decimal_places=4)

    KEY = ("endpoint_id", "tier", "free_preview", "state", "error_code")

    class Meta:
        abstract = True


class GenerationHour(GenerationCounts):
    """Generations created in one UTC hour."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", *GenerationCounts.KEY], name="generation_hour_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.endpoint_id} {self.state}: {self.generations}"


class GenerationDay(GenerationCounts):
    """GenerationHour added up by UTC day (desk.rollup writes both together), so a month of
    the dashboard reads about 60 rows a day rather than 24 times as many."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", *GenerationCounts.KEY], name="generation_day_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.endpoint_id} {self.state}: {self.generations}"


class StageTiming(models.Model):
    """The median and 95th percentile of one stage's duration, in seconds, over the
    generations created in one UTC hour or day (nearest-rank percentiles: exact, but they
    cannot be added up, hence a row per hour and per day)."""

    class Grain(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    grain = models.CharField(max_length=4, choices=Grain.choices)
    start = models.DateTimeField()
    stage = models.CharField(max_length=16)
    samples = models.PositiveIntegerField()
    p50 = models.FloatField()
    p95 = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["grain", "start", "stage"], name="stage_timing_unique"),
            models.CheckConstraint(condition=Q(grain__in=["hour", "day"]), name="stage_grain"),
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.start:%Y-%m-%d %H:00} {self.stage}: p95 {self.p95:.1f} s"


class LedgerHour(models.Model):
    """Ledger entries of one kind made in one UTC hour. `credits` is what they moved; for
    captures, which move no balance (the hold did), the credits their holds took."""

    hour = models.DateTimeField()
    kind = models.CharField(max_length=16)
    entries = models.PositiveIntegerField()
    credits = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "kind"], name="ledger_hour_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.kind}: {self.entries}"


class RollupRun(models.Model):
    """The one row saying when the rollup last ran: its next run also recomputes the hours of
    older generations that ended since (an approval days later changes an old hour)."""

    name = models.CharField(max_length=32, unique=True)
    ran_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.ran_at}"


class AlertState(models.Model):
    """Whether one staff alert is raised. The check moves it with a conditional UPDATE, so an
    alert mails once when its figure crosses the line and once when it falls back, however
    often and in however many processes the check runs."""

    key = models.CharField(max_length=32, unique=True)
    raised = models.BooleanField(default=False)
    value = models.FloatField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.key}: {'raised' if self.raised else 'clear'}"
