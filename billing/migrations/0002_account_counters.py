# Plan-limit counters on the account (billing.holds), counted once from the existing rows;
# DailyUsage's free previews move to the account's free_today.

import datetime as dt

from django.conf import settings
from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

TERMINAL = ["succeeded", "failed", "canceled", "blocked"]


def count_existing(apps, schema_editor):
    """One UPDATE for all accounts (no per-account round trips while the table is locked)."""
    CreditAccount = apps.get_model("billing", "CreditAccount")
    DailyUsage = apps.get_model("billing", "DailyUsage")
    Generation = apps.get_model("generation", "Generation")
    day = dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)

    def held(rows):
        """How many of `rows` the account's holds are for."""
        counted = (
            rows.filter(
                user_id=OuterRef("user_id"),
                ledger_entries__kind="hold",
                ledger_entries__account_id=OuterRef("pk"),
            )
            .order_by()
            .values("user_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return Coalesce(Subquery(counted), 0)

    used = DailyUsage.objects.filter(account_id=OuterRef("pk"), day=day).values("free_used")
    CreditAccount.objects.update(
        in_flight=held(Generation.objects.exclude(state__in=TERMINAL)),
        made_today=held(Generation.objects.filter(created_at__gte=start)),
        free_today=Coalesce(Subquery(used[:1]), 0),
        usage_day=day,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0001_initial"),
        ("generation", "0004_recent_runs_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="creditaccount",
            name="free_today",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="creditaccount",
            name="in_flight",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="creditaccount",
            name="made_today",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="creditaccount",
            name="usage_day",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="creditaccount",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("free_today__gte", 0), ("in_flight__gte", 0), ("made_today__gte", 0)
                ),
                name="credit_counters_not_negative",
            ),
        ),
        migrations.RunPython(count_existing, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="DailyUsage",
        ),
    ]
