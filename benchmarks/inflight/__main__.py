"""N generations in flight against the fake fal, through the product's real processes.

    .venv/bin/python -m benchmarks.inflight --n 1000 --db sqlite --webhooks on
    .venv/bin/python -m benchmarks.inflight --lone 20 --webhooks off   # one job at a time

Starts, on loopback only: the fake fal (its own process, 20 s of simulated inference), a fresh
database (a temporary SQLite file, or a throw-away PostgreSQL database + Redis), `manage.py
qcluster` with Q_WORKERS=2, `manage.py track`, and with webhooks gunicorn serving
/webhooks/fal/. It runs a few warm-up jobs, queues N generations at --rate per second, waits
until every row is terminal (or the time limit), stops everything and prints a table. See
benchmarks/README.md.
"""

import argparse
import contextlib
import datetime
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.inflight import counting, fakeproc
from generation import provenance

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = (
    "postgres://postgres@127.0.0.1:5432/postgres"  # the maintenance database: always there
)
TICKS = os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="generations (default 1000)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--webhooks", choices=["on", "off"], default="on")
    parser.add_argument(
        "--inference", type=float, help="fake fal seconds per job (default 20; 3 with --lone)"
    )
    parser.add_argument(
        "--queue",
        type=float,
        help="seconds a job stays IN_QUEUE at the fake before it runs (default 0.05; 1 with "
        "--lone, as fal's queue holds a lone job about that long)",
    )
    parser.add_argument(
        "--lone",
        type=int,
        default=0,
        metavar="N",
        help="instead of N in flight: N jobs one after another, each alone, cold (no run-time "
        "history), and report create -> succeeded against the provider's time",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="generations queued per second (default 50: with 20 s of inference, all 1000 are "
        "in flight at once at the peak); 0 queues all N in the same instant",
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="jobs run first and not measured (default 20)"
    )
    parser.add_argument(
        "--history",
        type=float,
        metavar="S",
        help="with --lone: the service has finished jobs of this kind in S s before (a history "
        "the tracker times its polls by); default none (cold)",
    )
    parser.add_argument("--workers", type=int, default=2, help="Q_WORKERS")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument(
        "--pg-name",
        help="name of the throw-away PostgreSQL database (default bench<pid>; it is dropped "
        "first if it exists, and afterwards)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.inference is None:
        args.inference = 3.0 if args.lone else 20.0
    if args.queue is None:
        args.queue = 1.0 if args.lone else 0.05
    if args.lone:
        args.n, args.warmup = args.lone, 0
    figures = run(args)
    (print_lone if args.lone else print_table)(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if figures["all_succeeded"] else 1


def process_env(*, scratch: Path, fake: dict, tag: str, workers: int) -> dict[str, str]:
    """The environment every benchmark process shares: production-like settings (DEBUG off),
    the fal backend pointed at the fake, and this run's own queue and cache keys."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
        **fake["env"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(scratch / "media"),
        "VIDEO_BACKEND": "fal",
        "FAL_ALLOW_PRIVATE_RESULT_HOSTS": "1",
        "FAL_WEBHOOK_JWKS_URL": fake["jwks_url"],
        "Q_WORKERS": str(workers),
        "Q_QUEUE_NAME": tag,
        "CACHE_KEY_PREFIX": tag,
        "LOG_LEVEL": "WARNING",
    }


def run(args) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="promptreel-bench-"))
    counts_dir = scratch / "counts"
    counts_dir.mkdir()
    tag = f"bench{os.getpid()}"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        fake = stack.enter_context(fake_fal_process(args.inference, args.queue))
        web_port = free_port()
        env = {
            **process_env(scratch=scratch, fake=fake, tag=tag, workers=args.workers),
            "BENCH_COUNT_DIR": str(counts_dir),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}" if args.webhooks == "on" else "",
        }
        # DEBUG is off, as in production: sign with configured files (a throw-away chain).
        env.update(provenance.write_throwaway_chain(scratch / "c2pa"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        if args.db == "sqlite":
            env["SQLITE_PATH"] = str(scratch / "bench.sqlite3")
        else:
            env["DATABASE_URL"] = stack.enter_context(
                throwaway_postgres(args.pg_admin_url, args.pg_name or tag)
            )
            env["REDIS_URL"] = args.redis_url
        env.update(item.split("=", 1) for item in args.env)
        # This process reads the database too: the same one as the processes it starts, never
        # a DATABASE_URL / REDIS_URL it inherited (the PostgreSQL test run's, say).
        for name in ("DATABASE_URL", "REDIS_URL"):
            if name not in env:
                os.environ.pop(name, None)
        os.environ.update(env)
        for command in (["migrate", "-v", "0"],):  # also creates the cache table
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)
        import django

        django.setup()
        video_copy_ms = calibrate_video_copy(scratch)

        commands = {
            "worker": [sys.executable, "-m", "benchmarks.inflight.counted", "worker", "qcluster"],
            "tracker": [sys.executable, "-m", "benchmarks.inflight.counted", "tracker", "track"],
        }
        if args.webhooks == "on":
            commands["web"] = [
                str(Path(sys.executable).with_name("gunicorn")),
                "benchmarks.inflight.wsgi:application",
                "--workers=2",
                f"--bind=127.0.0.1:{web_port}",
                "--log-level=warning",
            ]
        procs = stack.enter_context(started(commands, env, scratch))
        time.sleep(4)  # imports done, workers forked, brokers connected
        idle_before = {role: tree_cpu(proc.pid) for role, proc in procs.items()}
        time.sleep(3)
        idle_rate = {
            role: (tree_cpu(proc.pid) - idle_before[role]) / 3 for role, proc in procs.items()
        }
        if args.lone:
            # One unmeasured job first: the processes have finished starting (imports, first
            # connections, fal-client's TLS session) once it has gone through. Its run time is
            # removed from the history like the others', so the measured jobs are still cold.
            if args.history:  # before any poll, so no process has cached "no history"
                add_history(args.history)
            run_lone(1, limit=args.queue + args.inference + 120, first_index=10**6)
            rows = run_lone(
                args.lone, limit=args.queue + args.inference + 60, keep_history=bool(args.history)
            )
            completions = fake["stop"]()
            return lone_figures(args, rows, completions)
        if args.warmup:
            # A running service has finished jobs like these before; the tracker times its polls
            # by them (generation.polling). Not measured.
            warmup = queue_generations(args.warmup, rate=0, first_index=args.n)
            wait_until_terminal(warmup, time.time() + args.inference + 60)

        cpu_before = {role: tree_cpu(proc.pid) for role, proc in procs.items()}
        fake_before, machine_before = tree_cpu(fake["pid"]), machine_cpu()[0]
        queries_before = counting.totals(counts_dir)
        started_at = time.time()
        ids = queue_generations(args.n, rate=args.rate)
        limit = started_at + args.inference + 120 + args.n * 0.25
        states = wait_until_terminal(ids, limit)
        elapsed = time.time() - started_at
        time.sleep(1.2)  # let the query counters write their last figures
        cpu_after = {role: tree_cpu(proc.pid) for role, proc in procs.items()}
        fake_cpu = tree_cpu(fake["pid"]) - fake_before
        busy_cpu = machine_cpu()[0] - machine_before
        queries_after = counting.totals(counts_dir)
        completions = fake["stop"]()
        rows = finished_rows(ids)

    lags = [
        row["finished_at"] - completions[row["provider_request_id"]]
        for row in rows
        if row["state"] == "succeeded" and row["provider_request_id"] in completions
    ]
    cpu = {role: cpu_after[role] - cpu_before[role] for role in cpu_before}
    idle = {role: idle_rate[role] * elapsed for role in idle_rate}
    queries = {
        role: queries_after.get(role, 0) - queries_before.get(role, 0) for role in queries_after
    }
    return {
        "n": args.n,
        "db": args.db,
        "webhooks": args.webhooks,
        "inference_s": args.inference,
        "rate": args.rate,
        "warmup": args.warmup,
        "workers": args.workers,
        "extra_env": args.env,
        "states": states,
        "all_succeeded": states.get("succeeded", 0) == args.n,
        "elapsed_s": elapsed,
        "lag_s": summary(lags),
        "stages_s": stage_times(rows, completions),
        "cpu_ms_per_job": {role: 1000 * cpu[role] / args.n for role in cpu},
        "idle_cpu_ms_per_job": {role: 1000 * idle[role] / args.n for role in idle},
        "video_copy_cpu_ms": video_copy_ms,
        "fake_fal_cpu_ms_per_job": 1000 * fake_cpu / args.n,
        # The rest of the machine: PostgreSQL, Redis, this driver, anything else running.
        "rest_cpu_ms_per_job": 1000 * (busy_cpu - fake_cpu - sum(cpu.values())) / args.n,
        "cores_busy": busy_cpu / elapsed,
        "queries_per_job": {role: queries[role] / args.n for role in queries},
    }


@contextmanager
def fake_fal_process(inference: float, queue: float):
    """The fake fal in a process of its own, so that its CPU is not counted as ours."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=fakeproc.serve, args=(theirs, inference, queue), daemon=True)
    process.start()
    if not ours.poll(30):
        raise RuntimeError("the fake fal did not start")
    info = ours.recv()

    def stop() -> dict[str, float]:
        ours.send("stop")
        if not ours.poll(30):
            raise RuntimeError("the fake fal did not answer")
        return ours.recv()

    info["stop"] = stop
    info["pid"] = process.pid
    try:
        yield info
    finally:
        if process.is_alive():
            process.terminate()
        process.join(10)


@contextmanager
def throwaway_postgres(admin_url: str, name: str):
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def started(commands: dict[str, list[str]], env: dict[str, str], scratch: Path):
    procs = {}
    try:
        for role, command in commands.items():
            log = open(scratch / f"{role}.log", "wb")  # noqa: SIM115 - closed with the dir
            # A process group of its own: qcluster's sentinel and workers are its children,
            # and a qcluster killed after the grace period would leave them running (they
            # outlived earlier runs and loaded the machine of the next ones).
            procs[role] = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        yield procs
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for role, proc in procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
            tail = (scratch / f"{role}.log").read_text(errors="replace")[-1500:]
            if "Traceback" in tail or "ERROR" in tail:
                print(f"--- {role} log (tail):\n{tail}", file=sys.stderr)


def add_history(seconds: float, count: int = 10) -> None:
    """Finished jobs of the benchmark's kind that ran `seconds` at fal, an hour ago."""
    from django.utils import timezone

    from generation.models import Generation, State

    ids = _create_rows(_bench_user(), range(2 * 10**6, 2 * 10**6 + count))
    Generation.objects.filter(pk__in=ids).update(
        state=State.SUCCEEDED,
        inference_seconds=seconds,
        output="outputs/history.mp4",  # never served: only the run time is read
        next_check_at=None,
        finished_at=timezone.now() - datetime.timedelta(hours=1),
    )


def _bench_user():
    from accounts.models import User

    return User.objects.get_or_create(email="bench@example.com")[0]


def run_lone(
    n: int, *, limit: float, first_index: int = 0, keep_history: bool = False
) -> list[dict]:
    """N jobs, each created once the one before has ended: nothing else in flight.

    Cold: each finished job's inference time is removed from the history the tracker times its
    polls by (generation.polling.typical_run_seconds), so every job is timed as a first one.
    """
    from generation.models import Generation

    rows = []
    for index in range(n):
        ids = queue_generations(1, rate=0, first_index=first_index + index)
        wait_until_terminal(ids, time.time() + limit, every=0.05)
        rows += finished_rows(ids)
        if not keep_history:
            Generation.objects.filter(pk__in=ids).update(inference_seconds=None)
        time.sleep(0.3)  # no lock-step with the tracker's passes
    return rows


def lone_figures(args, rows: list[dict], completions: dict[str, float]) -> dict:
    succeeded = [row for row in rows if row["state"] == "succeeded"]
    total = [row["finished_at"] - row["created_at"] for row in succeeded]
    provider = args.queue + args.inference
    lag = [
        row["finished_at"] - completions[row["provider_request_id"]]
        for row in succeeded
        if row["provider_request_id"] in completions
    ]
    return {
        "lone": args.lone,
        "db": args.db,
        "webhooks": args.webhooks,
        "queue_s": args.queue,
        "inference_s": args.inference,
        "history_s": args.history,
        "extra_env": args.env,
        "all_succeeded": len(succeeded) == args.lone,
        "create_to_succeeded_s": summary(total),
        "over_provider_s": summary([value - provider for value in total]),
        "lag_s": summary(lag),
        "stages_s": stage_times(rows, completions),
        # Each job's stamps relative to its creation, and when fal finished it (for --json).
        "jobs": [
            {
                "polls": row["polls"],
                **{
                    key: round(value - row["created_at"], 3)
                    for key, value in {
                        **row,
                        "fal_done": completions.get(row["provider_request_id"]),
                    }.items()
                    if isinstance(value, float)
                },
            }
            for row in rows
        ],
    }


def print_lone(f: dict) -> None:
    rows = [
        (
            "lone jobs",
            f"{f['lone']} ({f['db']}, webhooks {f['webhooks']}, "
            + (f"history {f['history_s']:g} s" if f["history_s"] else "cold")
            + "; fake fal: "
            f"{f['queue_s']:g} s queue + {f['inference_s']:g} s run)",
        ),
        ("all succeeded", "yes" if f["all_succeeded"] else "NO"),
    ]
    for name, key in [
        ("create → succeeded", "create_to_succeeded_s"),
        ("  over provider time", "over_provider_s"),
        ("lag fal done → succeeded", "lag_s"),
    ]:
        if f[key].get("count"):
            rows.append((name, _spread(f[key])))
    for name, stage in f["stages_s"].items():
        if stage.get("count"):
            rows.append((f"  {name}", _spread(stage)))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def queue_generations(n: int, *, rate: float, first_index: int = 0) -> list:
    """N text-to-video rows, as users pressing "Generate": `rate` per second (0: all at once).

    Each row is created due now, as generation_create makes it: the tracker submits it.
    """
    user = _bench_user()
    ids: list = []
    started = time.monotonic()
    while len(ids) < n:
        due = n if rate <= 0 else min(n, int((time.monotonic() - started) * rate) + 1)
        if due > len(ids):
            ids += _create_rows(user, range(first_index + len(ids), first_index + due))
        else:
            time.sleep(0.02)
    return ids


def _create_rows(user, indexes: range) -> list:
    from django.utils import timezone

    from generation.models import Generation, State

    now = timezone.now()
    rows = Generation.objects.bulk_create(
        Generation(
            user=user,
            state=State.QUEUED,
            queued_at=now,
            next_check_at=now,
            endpoint_id="fal-ai/pika/v2.2/text-to-video",
            backend="fal",
            prompt=f"benchmark clip {index}",
            arguments={"prompt": f"benchmark clip {index}", "resolution": "720p", "seed": index},
            seed=index,
            resolution="720p",
            duration=5,
            aspect_ratio="16:9",
            credit_cost=40,
            fal_price_usd="0.20",
        )
        for index in indexes
    )
    return [row.pk for row in rows]


def wait_until_terminal(ids: list, limit: float, every: float = 0.5) -> dict[str, int]:
    from django.db.models import Count

    from generation.models import TERMINAL, Generation

    while True:
        states = dict(
            Generation.objects.filter(pk__in=ids)
            .values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        if sum(n for state, n in states.items() if state in TERMINAL) == len(ids):
            return states
        if time.time() > limit:
            print(f"time limit reached: {states}", file=sys.stderr)
            return states
        time.sleep(every)


def finished_rows(ids: list) -> list[dict]:
    from generation.models import Generation

    fields = ["provider_request_id", "state", "created_at", "submitting_at", "in_queue_at"]
    fields += ["in_progress_at", "polls"]
    fields += ["finalizing_at", "finished_at"]
    return [
        {
            key: value.timestamp() if hasattr(value, "timestamp") else value
            for key, value in row.items()
        }
        for row in Generation.objects.filter(pk__in=ids).values(*fields)
    ]


def stage_times(rows: list[dict], completions: dict[str, float]) -> dict[str, dict]:
    """Where the time goes, per job: waiting for a worker, submitting, and after fal finished."""
    spans = {
        "wait for submit": ("created_at", "submitting_at"),
        "submit call": ("submitting_at", "in_queue_at"),
        "in fal's queue → seen running": ("in_queue_at", "in_progress_at"),
        "fal done → finalizing": ("fal_done", "finalizing_at"),
        "finalizing → succeeded": ("finalizing_at", "finished_at"),
    }
    result = {}
    for name, (start, end) in spans.items():
        values = []
        for row in rows:
            row = {**row, "fal_done": completions.get(row["provider_request_id"])}
            if row.get(start) and row.get(end):
                values.append(row[end] - row[start])
        result[name] = summary(values)
    return result


def calibrate_video_copy(scratch: Path, rounds: int = 60) -> float:
    """CPU ms of media.store_video (spool, probe, poster, save) for the fake's clip: the median
    of `rounds` copies, so a moment of contention does not move the figure subtracted."""
    from generation import media
    from generation.models import Generation
    from tests.fakefal import default_mp4

    data = default_mp4()
    generation = Generation(user_id=0)
    media.store_video(generation, [data], declared_type="video/mp4")  # imports, first-use setup
    times = []
    for _ in range(rounds):
        started = time.process_time()
        media.store_video(generation, [data], declared_type="video/mp4")
        times.append(time.process_time() - started)
    return 1000 * statistics.median(times)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return (total - idle) / TICKS, total / TICKS


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its living descendants."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        # utime, stime, and cutime/cstime of children it already waited for.
        cpu[int(entry)] = sum(int(value) for value in fields[11:15]) / TICKS
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += cpu.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def print_table(f: dict) -> None:
    lag = f["lag_s"]
    cpu = f["cpu_ms_per_job"]
    idle = f["idle_cpu_ms_per_job"]
    total_cpu = sum(cpu.values())
    rows = [
        (
            "generations",
            f"{f['n']} ({f['db']}, webhooks {f['webhooks']}, Q_WORKERS={f['workers']}, "
            + (f"{f['rate']:g}/s" if f["rate"] > 0 else "all at once")
            + f", after {f['warmup']} unmeasured)",
        ),
        ("all succeeded", f"{'yes' if f['all_succeeded'] else 'NO'} {f['states']}"),
        ("wall time", f"{f['elapsed_s']:.1f} s (inference {f['inference_s']:.0f} s)"),
    ]
    if lag.get("count"):
        rows.append(
            (
                "lag fal done → succeeded",
                _spread(lag),
            )
        )
    rows += [
        ("CPU ms/job, all processes", f"{total_cpu:.1f} (idle share {sum(idle.values()):.1f})"),
        *[(f"  {role}", f"{cpu[role]:.1f} (idle {idle[role]:.1f})") for role in cpu],
        ("  video copy (in worker)", f"{f['video_copy_cpu_ms']:.1f}"),
        (
            "CPU ms/job excl. video copy",
            f"{total_cpu - f['video_copy_cpu_ms']:.1f}",
        ),
        ("fake fal CPU ms/job (not ours)", f"{f['fake_fal_cpu_ms_per_job']:.1f}"),
        (
            "rest of machine CPU ms/job",
            f"{f['rest_cpu_ms_per_job']:.1f} (PostgreSQL, Redis, driver…)",
        ),
        (f"cores busy (of {os.cpu_count()})", f"{f['cores_busy']:.2f}"),
        ("DB queries/job", f"{sum(f['queries_per_job'].values()):.1f}"),
        *[(f"  {role}", f"{q:.1f}") for role, q in f["queries_per_job"].items()],
    ]
    for name, stage in f["stages_s"].items():
        if stage.get("count"):
            rows.append((f"  {name}", _spread(stage)))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _spread(stats: dict) -> str:
    return f"p50 {stats['p50']:.2f} s · p95 {stats['p95']:.2f} s · max {stats['max']:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
