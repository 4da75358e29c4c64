# Plan-limit counters on the account (billing.holds), counted once from the existing rows;
# DailyUsage's free previews move to the account's free_today.

import datetime as dt

from django.conf import settings
from django.db import migrations, models

TERMINAL = ["succeeded", "failed", "canceled", "blocked"]


def count_existing(apps, schema_editor):
    CreditAccount = apps.get_model("billing", "CreditAccount")
    DailyUsage = apps.get_model("billing", "DailyUsage")
    Generation = apps.get_model("generation", "Generation")
    now = dt.datetime.now(dt.UTC)
    day = now.date()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    for account in CreditAccount.objects.all().iterator():
        held = Generation.objects.filter(
            user_id=account.user_id,
            ledger_entries__kind="hold",
            ledger_entries__account_id=account.pk,
        )
        usage = DailyUsage.objects.filter(account_id=account.pk, day=day).first()
        CreditAccount.objects.filter(pk=account.pk).update(
            in_flight=held.exclude(state__in=TERMINAL).count(),
            usage_day=day,
            made_today=held.filter(created_at__gte=start).count(),
            free_today=usage.free_used if usage else 0,
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
