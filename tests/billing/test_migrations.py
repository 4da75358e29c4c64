"""Migration 0002 counts the counters of existing accounts from their rows."""

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0001_initial")]
AFTER = [("billing", "0002_account_counters")]


def test_counters_of_existing_accounts_are_counted_from_their_rows():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    user = apps.get_model("accounts", "User").objects.create(email="old@example.com")
    account = apps.get_model("billing", "CreditAccount").objects.create(user_id=user.pk)
    Generation = apps.get_model("generation", "Generation")
    LedgerEntry = apps.get_model("billing", "LedgerEntry")
    now = dt.datetime.now(dt.UTC)

    def generation(state, created, *, held=True):
        row = Generation.objects.create(
            user_id=user.pk,
            state=state,
            endpoint_id="fal-ai/pika/v2.2/text-to-video",
            backend="local",
            arguments={},
            seed=1,
            resolution="720p",
            duration=5,
            credit_cost=0,
            fal_price_usd="0.20",
            created_at=created,
            finished_at=created if state == "succeeded" else None,
            output="outputs/x.mp4" if state == "succeeded" else "",
        )
        if held:
            LedgerEntry.objects.create(
                account_id=account.pk,
                kind="hold",
                amount=0,
                idempotency_key=f"gen:{row.pk}:hold",
                generation_id=row.pk,
            )

    generation("queued", now)
    generation("in_progress", now)
    generation("succeeded", now)
    generation("queued", now - dt.timedelta(days=2))
    generation("queued", now, held=False)  # made outside billing: never counted
    usage = apps.get_model("billing", "DailyUsage")
    usage.objects.create(account_id=account.pk, day=now.date(), free_used=2)
    usage.objects.create(account_id=account.pk, day=now.date() - dt.timedelta(days=2), free_used=1)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    try:
        from billing.models import CreditAccount

        migrated = CreditAccount.objects.get(pk=account.pk)
        assert (migrated.in_flight, migrated.made_today, migrated.free_today) == (3, 3, 2)
        assert migrated.usage_day == now.date()
    finally:
        # Back to the latest schema: a later migration's columns (billing 0003) must exist for
        # the tests that share this database after this one.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
