"""API throughput and latency under gunicorn on PostgreSQL + Redis, against a trivial baseline.

    .venv/bin/python -m benchmarks.api

Starts, on loopback only: a throw-away PostgreSQL database (created and dropped), Redis as
cache/broker (a database of its own, keys prefixed and deleted afterwards), and gunicorn
serving the product with benchmarks.api.settings (the product's URLs plus /bench/ping, a
trivial DRF view with the API's authentication, permissions and throttle). No qcluster runs,
so POST /generations (local backend) only queues. It then counts queries per request
in-process (Django test client + CaptureQueriesContext), drives each endpoint with `wrk` (a
warm-up, then a fixed duration), stops everything and prints a table. See benchmarks/README.md.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from benchmarks.inflight.__main__ import (
    PG_ADMIN_URL,
    free_port,
    machine_cpu,
    started,
    throwaway_postgres,
    tree_cpu,
)
from generation import provenance

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")
CREATE_BODY = {"prompt": "a red fox walking in fresh snow", "resolution": "720p", "duration": 5}
TARGETS = {"detail": 0.60, "create": 0.30}  # share of the baseline's throughput
# Everything the load hits, in order; the baseline runs first and last (drift check).
CASES = ["baseline", "detail", "list", "create", "baseline2"]
LIST_LIMIT = 20  # the API's default page size
SEEDED_ROWS = 50  # each load user's rows before the run (the list endpoint reads 20 of them)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before each, unmeasured")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (wrk)")
    parser.add_argument(
        "--keepalive",
        action="store_true",
        help="reuse connections (default: Connection: close, so that each request is accepted "
        "by whichever gunicorn worker is free; with keep-alive wrk's few connections can land "
        "unevenly on the workers and one worker's core sits idle)",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="load users (accounts), each with its own key; every case, baseline included, "
        "spreads its requests over their keys round-robin (creates of one account serialise "
        "on its account row lock)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every case this many times in turn; each case reports its median round by "
        "ratio to that round's own baseline",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting"
    )
    parser.add_argument("--show-queries", action="store_true", help="print every counted query")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile 200 in-process detail and create requests (top functions)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.accounts < 1:
        parser.error("--accounts must be at least 1")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    figures = run(args)
    print_table(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0 if figures["targets_met"] and figures["queries_constant"] else 1


def run(args) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="promptreel-bench-api-"))
    tag = f"benchapi{os.getpid()}"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "DJANGO_"))
        }
        for name in ("DATABASE_URL", "REDIS_URL", "FAL_KEY", "OPENAI_API_KEY", "SQLITE_PATH"):
            env.pop(name, None)  # nothing leaves the machine, nothing reaches a real database
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "benchmarks.api.settings",
                "SECRET_KEY": "benchmark-only-secret-key-" + "x" * 40,
                "DEBUG": "0",
                "SECURE_SSL_REDIRECT": "0",
                "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
                "MEDIA_ROOT": str(scratch / "media"),
                # DEBUG is off: C2PA signing wants configured files (a throw-away chain).
                **provenance.write_throwaway_chain(scratch / "c2pa"),
                "VIDEO_BACKEND": "local",
                "REDIS_URL": args.redis_url,
                "CACHE_KEY_PREFIX": tag,
                "Q_QUEUE_NAME": tag,
                "API_REQUESTS_PER_MINUTE": str(10**9),
                # Lifted so that every POST of the run is a create, not a refusal: rows are never
                # rendered (in flight for good), and Studio's daily cap (2000) is reached in
                # about 20 s at 100 creates/s. Both limits are still checked on every create.
                "BILLING_PLAN_OVERRIDES": json.dumps(
                    {"studio": {"max_in_flight": 10**6, "max_generations_per_day": 10**6}}
                ),
                "LOG_LEVEL": "WARNING",
            }
        )
        env["DATABASE_URL"] = stack.enter_context(throwaway_postgres(args.pg_admin_url, tag))
        stack.callback(forget_redis_keys, args.redis_url, tag)
        env.update(item.split("=", 1) for item in args.env)
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        import django

        django.setup()
        from django.db import connection

        # One load user keeps its historical name; with --accounts N they are load1..loadN.
        names = (
            ["load"] if args.accounts == 1 else [f"load{i}" for i in range(1, args.accounts + 1)]
        )
        made = [make_user(name, rows=SEEDED_ROWS) for name in names]
        load_users, keys = [user for user, _ in made], [key for _, key in made]
        # Users only see their own rows: each key GETs a succeeded row of its own user.
        detail_ids = [first_succeeded(user) for user in load_users]
        queries = count_queries(show=args.show_queries)
        if args.profile:
            profile(keys[0], detail_ids[0])

        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "benchmarks.api.wsgi:application",
            f"--workers={args.workers}",
            f"--threads={args.threads}",
            "--worker-class=gthread",
            f"--bind=127.0.0.1:{port}",
            "--log-level=warning",
        ]
        procs = stack.enter_context(started({"web": command}, env, scratch))
        base = f"http://127.0.0.1:{port}"
        wait_until_serving(base, keys[0])
        # Per case: the method, the body and, per key, the path (the detail row is the key's own).
        requests = {
            "baseline": ("GET", ["/bench/ping"] * len(keys), None),
            "baseline2": ("GET", ["/bench/ping"] * len(keys), None),
            "detail": ("GET", [f"/api/v1/generations/{pk}" for pk in detail_ids], None),
            "list": ("GET", [f"/api/v1/generations?limit={LIST_LIMIT}"] * len(keys), None),
            "create": ("POST", ["/api/v1/generations"] * len(keys), json.dumps(CREATE_BODY)),
        }
        rounds = []
        for _ in range(args.rounds):
            load = {}
            for case in CASES:
                method, paths, body = requests[case]
                for key, path in zip(keys, paths, strict=True):
                    check_once(base, key, method, path, body)
                script = write_script(
                    scratch / f"{case}.lua",
                    list(zip(keys, paths, strict=True)),
                    method,
                    body,
                    args.keepalive,
                )
                wrk(base + paths[0], script, args.warmup, args.connections)
                load[case] = measured(
                    base + paths[0], script, args.duration, args.connections, procs["web"].pid
                )
            round_baseline = (load["baseline"]["rps"] + load["baseline2"]["rps"]) / 2
            for figures in load.values():
                figures["ratio"] = figures["rps"] / round_baseline if round_baseline else 0.0
                figures["baseline_rps"] = round_baseline
            rounds.append(load)
            # Thousands of rows were just created: refresh the planner's statistics, as
            # autovacuum would within its minute, or the next round's list is planned for a
            # table of 50 rows.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        created = sum(rows_of(user) for user in load_users) - SEEDED_ROWS * len(load_users)

    # Each case's figures are those of its median round by ratio (each round's ratios use that
    # round's own baseline runs, so a noisy stretch of minutes moves both sides of one ratio).
    load = {}
    for case in CASES:
        by_ratio = sorted((r[case] for r in rounds), key=lambda figures: figures["ratio"])
        ratios = [r[case]["ratio"] for r in rounds]
        load[case] = {**by_ratio[len(by_ratio) // 2], "round_ratios": ratios}
    baseline_rps = sorted(r["baseline"]["baseline_rps"] for r in rounds)[len(rounds) // 2]
    list_counts = [queries[f"list, {n} rows"]["count"] for n in (1, 10, 50)]
    return {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "accounts": args.accounts,
        "keepalive": args.keepalive,
        "gunicorn": f"{args.workers} workers × {args.threads} threads (gthread)",
        "cpus": os.cpu_count(),
        "baseline_rps": baseline_rps,
        "load": load,
        "created_rows": created,
        "queries": queries,
        "queries_constant": len(set(list_counts)) == 1,
        "targets": TARGETS,
        "targets_met": all(load[case]["ratio"] >= share for case, share in TARGETS.items()),
    }


# --- Setup --------------------------------------------------------------------------------------


def make_user(name: str, rows: int):
    """A studio user with plenty of credits and a key with every scope, and `rows` generations
    (every third one succeeded with an output, the others queued)."""
    from django.utils import timezone

    from accounts.models import User
    from api.models import Scope
    from api.services import apikey_create
    from billing import services as billing
    from generation.models import Generation, State

    user = User.objects.create_user(email=f"bench-{name}@example.com", password="x" * 20)
    account = billing.account_for(user)
    billing.plan_change(account=account, plan="studio", source="staff", reason="bench")
    billing.credits_purchase(account=account, credits=10**7, key=f"bench-{name}", reason="bench")
    _, raw = apikey_create(user=user, name="bench", scopes=list(Scope.values))
    now = timezone.now()
    generations = []
    for index in range(rows):
        done = index % 3 == 0
        generations.append(
            Generation(
                user=user,
                state=State.SUCCEEDED if done else State.QUEUED,
                queued_at=now,
                finished_at=now if done else None,
                endpoint_id="fal-ai/pika/v2.2/text-to-video",
                backend="local",
                prompt=f"benchmark clip {index}",
                arguments={"prompt": f"benchmark clip {index}", "seed": index},
                seed=index,
                resolution="720p",
                duration=5,
                aspect_ratio="16:9",
                credit_cost=40,
                fal_price_usd="0.20",
                output=f"outputs/bench/{index}.mp4" if done else "",
                poster=f"posters/bench/{index}.jpg" if done else "",
                video_codec="h264" if done else "",
                video_width=1280 if done else None,
                video_height=720 if done else None,
                video_duration=5.0 if done else None,
                video_bytes=1_000_000 if done else None,
            )
        )
    Generation.objects.bulk_create(generations)
    return user, raw


def first_succeeded(user):
    from generation.models import Generation, State

    return Generation.objects.filter(user=user, state=State.SUCCEEDED).values_list("pk")[0][0]


def rows_of(user) -> int:
    from generation.models import Generation

    return Generation.objects.filter(user=user).count()


def forget_redis_keys(redis_url: str, tag: str) -> None:
    """Our cache entries and queued submit tasks (nothing runs them): only keys with our tag."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for name in client.scan_iter(match=f"*{tag}*", count=1000):
        client.delete(name)


# --- Queries per request (in-process) ------------------------------------------------------------


def count_queries(show: bool) -> dict:
    """Queries per request through the whole stack (middleware, auth, throttle, view), in
    steady state: each request is made once first, so the once-a-minute `last_used_at` write
    and other first-use work are not counted."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    results = {}

    def count(label, client, method, path, body=None, expect=200):
        def call():
            if method == "POST":
                return client.post(path, data=body, content_type="application/json")
            return client.get(path)

        call()  # warm: last_used_at, first-use caches
        timings = []

        def timed(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append((time.perf_counter() - started, sql))

        with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timed):
            response = call()
        if response.status_code != expect:
            raise RuntimeError(f"{label}: HTTP {response.status_code} {response.content[:300]!r}")
        queries = captured.captured_queries
        slowest = max(timings, default=(0.0, ""))
        results[label] = {
            "count": len(queries),
            "db_ms": 1000 * sum(seconds for seconds, _ in timings),
            "slowest_ms": 1000 * slowest[0],
            "slowest_sql": slowest[1][:160],
        }
        if show:
            print(f"\n--- {label}: {len(queries)} queries")
            for seconds, sql in timings:
                print(f"  {seconds * 1000:6.2f} ms  {sql[:200]}")

    for rows in (1, 10, 50):
        user, raw = make_user(f"list{rows}", rows=rows)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        count(f"list, {rows} rows", client, "GET", "/api/v1/generations?limit=50")
        if rows == 50:
            detail = first_succeeded(user)
            count("detail (succeeded)", client, "GET", f"/api/v1/generations/{detail}")
            count("baseline /bench/ping", client, "GET", "/bench/ping")
            count(
                "create",
                client,
                "POST",
                "/api/v1/generations",
                json.dumps(CREATE_BODY),
                expect=201,
            )
            keyed = Client(
                HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
            )
            # The warm-up call makes the row; the counted call is the replay.
            count(
                "create replay (Idempotency-Key)",
                keyed,
                "POST",
                "/api/v1/generations",
                json.dumps(CREATE_BODY),
                expect=201,
            )
    return results


def profile(key: str, detail_id) -> None:
    """Where a request's CPU goes, in-process (test client; no gunicorn, same stack below)."""
    import cProfile
    import pstats

    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    cases = {
        "baseline": lambda: client.get("/bench/ping"),
        "detail": lambda: client.get(f"/api/v1/generations/{detail_id}"),
        "create": lambda: client.post(
            "/api/v1/generations", data=json.dumps(CREATE_BODY), content_type="application/json"
        ),
    }
    for name, call in cases.items():
        call()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(200):
            call()
        profiler.disable()
        per_request = (time.perf_counter() - started) / 200 * 1000
        print(f"\n--- profile: {name}, {per_request:.2f} ms/request in-process (profiled)")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


# --- Load ----------------------------------------------------------------------------------------


def wait_until_serving(base: str, key: str) -> None:
    import httpx

    deadline = time.time() + 30
    while True:
        try:
            response = httpx.get(
                base + "/bench/ping", headers={"Authorization": f"Bearer {key}"}, timeout=2
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            raise RuntimeError("gunicorn did not start (see its log above)")
        time.sleep(0.2)


def check_once(base: str, key: str, method: str, path: str, body: str | None) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    response = httpx.request(method, base + path, headers=headers, content=body, timeout=10)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")


LUA = """
wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
{body}
{spread}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


# With several keys: one request per (key, path), built once in init() (after wrk has set the
# Host header), then handed out round-robin by request(), one key after the other.
SPREAD = """
local targets = {{ {targets} }}
local built = {{}}
local next_index = 0
init = function(args)
  for i, target in ipairs(targets) do
    local headers = {{}}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    headers["Authorization"] = "Bearer " .. target[1]
    built[i] = wrk.format(nil, target[2], headers)
  end
end
request = function()
  next_index = next_index % #built + 1
  return built[next_index]
end
"""


def write_script(
    path: Path, targets: list[tuple[str, str]], method: str, body: str | None, keepalive: bool
) -> Path:
    """wrk's Lua script; `targets` is (key, path) per load user: one is a static request (as
    before --accounts), several are spread round-robin, request by request."""
    body_line = f"wrk.body = {json.dumps(body)}" if body else ""
    if not keepalive:
        body_line += '\nwrk.headers["Connection"] = "close"'
    spread = ""
    if len(targets) > 1:
        spread = SPREAD.format(
            targets=", ".join(
                f"{{{json.dumps(key)}, {json.dumps(target)}}}" for key, target in targets
            )
        )
    path.write_text(LUA.format(method=method, key=targets[0][0], body=body_line, spread=spread))
    return path


def wrk(url: str, script: Path, seconds: float, connections: int) -> dict:
    """One wrk run (one thread: wrk's event loop needs far less than a core here)."""
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


def measured(url: str, script: Path, duration: float, connections: int, server_pid: int) -> dict:
    """Run wrk and say where the two cores went: gunicorn's tree, wrk, and the rest (PostgreSQL,
    Redis, anything else on the machine)."""
    busy_before, total_before = machine_cpu()
    services_before = services_cpu()
    server_before = tree_cpu(server_pid)
    workers_before = workers_cpu(server_pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = wrk(url, script, duration, connections)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = tree_cpu(server_pid) - server_before
    workers_after = workers_cpu(server_pid)
    services_after = services_cpu()
    busy_after, total_after = machine_cpu()
    seconds = result["duration_us"] / 1e6
    loadgen = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    busy = busy_after - busy_before
    # Processes that exited during the run lose their CPU here (an underestimate).
    services = {"postgres": 0.0, "redis": 0.0}
    for (role, pid), after in services_after.items():
        services[role] += after - services_before.get((role, pid), 0.0)
    workers = sorted(
        (after - workers_before.get(pid, 0.0)) / seconds for pid, after in workers_after.items()
    )
    errors = sum(result[name] for name in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": result["requests"],
        "seconds": seconds,
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1000,
        "p95_ms": result["p95_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "errors": errors,
        "non_2xx": result["status"],
        "cpu_cores": {
            "gunicorn": server / seconds,
            "wrk": loadgen / seconds,
            "postgres": services["postgres"] / seconds,
            "redis": services["redis"] / seconds,
            "other": max(0.0, busy - server - loadgen - sum(services.values())) / seconds,
            "idle": max(0.0, (total_after - total_before) - busy) / seconds,
        },
        "server_cpu_ms_per_request": 1000 * server / max(1, result["requests"]),
        "worker_cores": workers,
    }


def services_cpu() -> dict[tuple[str, int], float]:
    """CPU seconds of each PostgreSQL and Redis server process (by command name), by pid."""
    result = {}
    for role, pid, fields in processes():
        name = role
        role = "postgres" if name.startswith("postgres") else "redis" if "redis" in name else None
        if role:
            result[(role, pid)] = (int(fields[11]) + int(fields[12])) / TICKS
    return result


def workers_cpu(server_pid: int) -> dict[int, float]:
    """CPU seconds of each gunicorn worker (the master's children), by pid."""
    return {
        pid: (int(fields[11]) + int(fields[12])) / TICKS
        for _, pid, fields in processes()
        if int(fields[1]) == server_pid
    }


def processes():
    """(command name, pid, /proc/pid/stat fields after the name) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        yield (
            stat[stat.index("(") + 1 : stat.rindex(")")],
            int(entry),
            stat.rsplit(")", 1)[1].split(),
        )


# --- Report --------------------------------------------------------------------------------------

CORE_PARTS = ("gunicorn", "wrk", "postgres", "redis", "other", "idle")
CORES = "cores: " + " ".join(f"{part[:5]:>5}" for part in CORE_PARTS)


def print_table(f: dict) -> None:
    names = {
        "baseline": "baseline GET /bench/ping",
        "detail": "GET /api/v1/generations/{id}",
        "list": f"GET /api/v1/generations?limit={LIST_LIMIT}",
        "create": "POST /api/v1/generations",
        "baseline2": "baseline again (drift)",
    }
    print()
    print(
        f"gunicorn {f['gunicorn']}, wrk 1 thread × {f['connections']} connections "
        f"({'keep-alive' if f['keepalive'] else 'Connection: close'}), "
        + ("1 account, " if f["accounts"] == 1 else f"{f['accounts']} accounts (keys in turn), ")
        + f"{f['duration_s']:.0f} s per endpoint after {f['warmup_s']:.0f} s warm-up, "
        f"{f['cpus']} CPUs shared by server, load generator, PostgreSQL and Redis"
    )
    header = (
        f"{'endpoint':<36} {'req/s':>8} {'vs base':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'errors':>7} {'srv CPU ms/req':>15}  {CORES}   per worker"
    )
    print(header)
    print("-" * len(header))
    for case, name in names.items():
        row = f["load"][case]
        cores = row["cpu_cores"]
        split = " ".join(f"{cores[part]:>5.2f}" for part in CORE_PARTS)
        print(
            f"{name:<36} {row['rps']:>8.0f} {row['ratio']:>7.0%} {row['p50_ms']:>8.1f} "
            f"{row['p95_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['errors']:>7} "
            f"{row['server_cpu_ms_per_request']:>15.2f}  {split}   "
            + "+".join(f"{core:.2f}" for core in row["worker_cores"])
        )
    print(f"(baseline for ratios = mean of the two baseline runs, {f['baseline_rps']:.0f} req/s)")
    if f["rounds"] > 1:
        print(
            f"{f['rounds']} rounds; each row is the case's median round. Ratios per round: "
            + "; ".join(
                f"{case} " + " / ".join(f"{ratio:.0%}" for ratio in f["load"][case]["round_ratios"])
                for case in ("detail", "list", "create")
            )
        )
    print()
    for case, share in f["targets"].items():
        ratio = f["load"][case]["ratio"]
        verdict = "met" if ratio >= share else "NOT met"
        print(f"target {names[case]}: ≥ {share:.0%} of baseline → {ratio:.0%} ({verdict})")
    print(f"rows created by the POST runs (queued, never rendered): {f['created_rows']}")
    print()
    print(
        f"{'queries per request (in-process, steady state)':<48} {'queries':>7} {'DB ms':>7}",
        " slowest",
    )
    for label, q in f["queries"].items():
        print(
            f"{label:<48} {q['count']:>7} {q['db_ms']:>7.2f}  "
            f"{q['slowest_ms']:.2f} ms: {q['slowest_sql'][:90]}"
        )
    constant = "yes" if f["queries_constant"] else "NO"
    print(f"list queries constant for 1, 10, 50 rows: {constant}")


if __name__ == "__main__":
    sys.exit(main())
