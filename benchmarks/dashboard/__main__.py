"""The staff dashboard on a million generations (issue 15: answer in under 300 ms).

    .venv/bin/python -m benchmarks.dashboard [--rows 1000000] [--days 90] [--requests 30]

In a throw-away PostgreSQL database (created from --pg-admin-url, dropped afterwards unless
--keep): migrate, then seed --rows generations spread evenly over the last --days days by
INSERT … SELECT generate_series (states, endpoints, tiers, error codes and stage times drawn
by formula: 80 % ready, 8 % failed, …), a hold for each and a capture for each ready one in
the ledger (about two ledger entries a row), and a report for one in a thousand; then VACUUM
ANALYZE (what autovacuum does to tables that have lived a while). Then:

- the full rollup (desk.rollup.rollup_days over every day), timed once: what a deployment does
  once with `manage.py dashboard_rollup --all`;
- the periodic rollup (rollup_recent: the last DASHBOARD_ROLLUP_HOURS), timed three times;
- GET /admin/dashboard/ (30 days, today's hours) and ?days=90, as a signed-in staff member
  through the Django test client (the whole view, template and middleware; no network):
  one unmeasured warm-up, then --requests each; p50 / p95 / max and the queries per request.

Target: p95 < 300 ms for the 30-day page. Prints a table (with the median CPU time of the
request in this process and the queries' time, to tell a loaded machine from a slow page);
--json FILE writes the figures. --database-url reuses a database seeded with --keep.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 300

# Every row: a UUID, a user among 500, created `i` steps back from now across the days.
# The per-row formulas keep the mix stable: bucket = i % 100 picks the state.
SEED_GENERATIONS = """
INSERT INTO generation_generation (
    id, user_id, state, endpoint_id, backend, prompt, preset, arguments, seed, resolution,
    duration, aspect_ratio, tier, free_preview, credit_cost, fal_price_usd, provider_urls,
    provider_metrics, provider_output_url, attempts, polls, error_code, error_message, output,
    poster, video_codec, c2pa_manifest, created_at, updated_at, queued_at, in_queue_at,
    in_progress_at, finalizing_at, finished_at, next_check_at
)
SELECT
    gen_random_uuid(), u.ids[1 + i %% array_length(u.ids, 1)], s.state, s.endpoint, 'fal',
    'a benchmark prompt', 'static', '{}'::jsonb, i %% 4294967295, s.resolution, 5, '16:9',
    s.tier, s.free_preview, s.credits, s.price, '{}'::jsonb, '{}'::jsonb, '', 1, 3,
    s.error_code, '', CASE WHEN s.state = 'succeeded' THEN 'outputs/bench.mp4' ELSE '' END,
    '', '', '', t.created, t.created, t.created,
    CASE WHEN s.reached >= 1 THEN t.created + make_interval(secs => 1 + i %% 7) END,
    CASE WHEN s.reached >= 2 THEN t.created + make_interval(secs => 8 + i %% 30) END,
    CASE WHEN s.reached >= 3 THEN t.created + make_interval(secs => 40 + i %% 90) END,
    CASE WHEN s.state IN ('succeeded', 'failed', 'canceled', 'blocked')
         THEN t.created + make_interval(secs => 140 + i %% 20) END,
    NULL
FROM generate_series(0, %(rows)s - 1) AS i
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM accounts_user) AS u
CROSS JOIN LATERAL (
    SELECT now() - make_interval(secs => (i::float8 / %(rows)s) * %(days)s * 86400 + 300)
        AS created
) AS t
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN i %% 100 < 80 THEN 'succeeded' WHEN i %% 100 < 88 THEN 'failed'
             WHEN i %% 100 < 93 THEN 'canceled' WHEN i %% 100 < 95 THEN 'blocked'
             WHEN i %% 100 < 96 THEN 'held' ELSE 'succeeded' END AS state,
        CASE WHEN i %% 100 < 80 OR i %% 100 >= 96 THEN 3
             WHEN i %% 100 < 88 THEN i %% 4 ELSE 0 END AS reached,
        CASE WHEN i %% 100 >= 80 AND i %% 100 < 88
             THEN (ARRAY['provider_error', 'timeout', 'download_failed', 'provider_auth',
                         'content_policy'])[1 + i %% 5] ELSE '' END AS error_code,
        (ARRAY['fal-ai/pika/v2.2/text-to-video', 'fal-ai/pika/v2.2/image-to-video',
               'fal-ai/pika/v2.1/text-to-video', 'fal-ai/pika/v2.2/pikascenes'])[1 + i %% 4]
            AS endpoint,
        CASE WHEN i %% 10 = 0 THEN 'hd' ELSE 'preview' END AS tier,
        CASE WHEN i %% 10 = 0 THEN '1080p' ELSE '720p' END AS resolution,
        (i %% 10 IN (1, 2, 3)) AS free_preview,
        CASE WHEN i %% 10 = 0 THEN 90 WHEN i %% 10 IN (1, 2, 3) THEN 0 ELSE 40 END AS credits,
        CASE WHEN i %% 10 = 0 THEN 0.45 ELSE 0.20 END AS price
) AS s
"""
SEED_LEDGER = """
INSERT INTO billing_ledgerentry (
    account_id, kind, amount, monthly, purchased, generation_id, idempotency_key, reason,
    created_at
)
SELECT a.id, 'hold', -g.credit_cost, 0, -g.credit_cost, g.id, 'gen:' || g.id || ':hold', '',
       g.created_at
FROM generation_generation g JOIN billing_creditaccount a ON a.user_id = g.user_id
UNION ALL
SELECT a.id, 'capture', 0, 0, 0, g.id, 'gen:' || g.id || ':capture', '', g.finished_at
FROM generation_generation g JOIN billing_creditaccount a ON a.user_id = g.user_id
WHERE g.state = 'succeeded'
"""
SEED_REPORTS = """
INSERT INTO moderation_report (generation_id, reporter_id, reason, details, status, times,
                               created_at, updated_at)
SELECT g.id, g.user_id, 'hate', '', 'open', 1, g.created_at, g.created_at
FROM (SELECT id, user_id, created_at, row_number() OVER (ORDER BY created_at) AS n
      FROM generation_generation) g
WHERE g.n % 1000 = 0
"""


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95 + 0.999) - 1, 0)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "n": len(ordered),
    }


def run(args) -> dict:
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    figures: dict = {"rows": args.rows, "days": args.days}
    call_command("migrate", verbosity=0)
    if not args.reuse:
        seed(figures, args)
    with connection.cursor() as cursor:
        # What autovacuum does to a table that has lived a while: the visibility map set, so
        # counts can be answered from an index.
        cursor.execute("VACUUM ANALYZE")
    rolled_up(figures, args)
    return measure(figures, args)


def seed(figures: dict, args) -> None:
    from django.db import connection

    from accounts.models import User
    from billing.models import CreditAccount

    users = [User(email=f"bench{n}@example.com") for n in range(500)]
    User.objects.bulk_create(users)
    CreditAccount.objects.bulk_create(CreditAccount(user=u) for u in User.objects.all())
    User.objects.create(email="staff@example.com", is_staff=True)  # measure() signs in as it
    with connection.cursor() as cursor:
        figures["seed_generations_s"] = round(
            timed(lambda: cursor.execute(SEED_GENERATIONS, {"rows": args.rows, "days": args.days})),
            1,
        )
        figures["seed_ledger_s"] = round(timed(lambda: cursor.execute(SEED_LEDGER)), 1)
        cursor.execute(SEED_REPORTS)
        cursor.execute("SELECT count(*) FROM billing_ledgerentry")
        figures["ledger_entries"] = cursor.fetchone()[0]
    print(f"seeded {args.rows} generations, {figures['ledger_entries']} ledger entries", flush=True)


def rolled_up(figures: dict, args) -> None:
    from django.db import connection
    from django.utils import timezone

    from desk import rollup

    today = timezone.now().date()
    every_day = [today - dt.timedelta(days=n) for n in range(args.days + 1)]
    figures["rollup_all_s"] = round(timed(lambda: rollup.rollup_days(days=every_day)), 1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM desk_generationhour")
        figures["rollup_rows"] = cursor.fetchone()[0]
    recent = [timed(rollup.rollup_recent) for _ in range(3)]
    figures["rollup_recent_s"] = [round(s, 2) for s in recent]
    print(f"rollup: all {figures['rollup_all_s']} s, recent {figures['rollup_recent_s']} s")


def measure(figures: dict, args) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(email="staff@example.com"))
    for name, query in (("30 days", {}), ("90 days", {"days": 90})):
        assert client.get("/admin/dashboard/", query).status_code == 200  # warm-up
        times, cpu, database = [], [], []
        for _ in range(args.requests):
            with CaptureQueriesContext(connection) as queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                answer = client.get("/admin/dashboard/", query)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            database.append(sum(float(q["time"]) for q in queries.captured_queries))
            assert answer.status_code == 200, answer.status_code
        figures[name] = {
            **summary(times),
            "queries": len(queries),
            # Where the time went, medians: this process's CPU (view, template, charts) and
            # the queries' wall time as Django saw it (the database's share).
            "python_cpu_ms": round(statistics.median(cpu) * 1000, 1),
            "db_ms": round(statistics.median(database) * 1000, 1),
            "slowest_queries_ms": sorted(
                (round(float(q["time"]) * 1000, 1), q["sql"][:120])
                for q in queries.captured_queries
            )[-3:],
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--db-name", default=f"promptreel_bench_dashboard_{uuid.uuid4().hex[:8]}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="a database kept by --keep: no seeding (the rollup and the requests again)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import psycopg

    if not args.reuse:
        with psycopg.connect(args.pg_admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{args.db_name}"')
    os.environ["DATABASE_URL"] = args.pg_admin_url.rsplit("/", 1)[0] + "/" + args.db_name
    os.environ.pop("REDIS_URL", None)
    try:
        figures = run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not (args.keep or args.reuse):
            with psycopg.connect(args.pg_admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    print()
    print(
        f"{'page':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'queries':>8} "
        f"{'cpu ms':>8} {'db ms':>8}"
    )
    for name in ("30 days", "90 days"):
        row = figures[name]
        print(
            f"{name:<10} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8} "
            f"{row['queries']:>8} {row['python_cpu_ms']:>8} {row['db_ms']:>8}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = figures["30 days"]["p95_ms"] < TARGET_MS
    print(f"\ntarget p95 < {TARGET_MS} ms (30 days): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
