"""N generations through the product's real processes while fal fails and our processes die.

    .venv/bin/python -m benchmarks.chaos                      # 300 generations, 3 kills each
    .venv/bin/python -m benchmarks.chaos --n 20 --kills 1     # the smoke run

Starts, on loopback only: the fake fal in its own process with transient errors on a share of
its queue calls, ambiguous submits, dropped and duplicated webhooks; a throw-away PostgreSQL
database next to --database-url's (created, dropped afterwards) and Redis (--redis-url) as
broker and cache; gunicorn serving fal's webhooks; `manage.py qcluster` and `manage.py track`;
and a loopback HTTPS receiver for the API clients' webhooks. It creates N generations through
`workflows.generations.generation_create` (paid and free previews, each with a webhook
subscription), SIGKILLs the worker cluster's process group and the tracker at random moments,
restarts them, waits until every row is terminal and every outgoing webhook is sent, and then
checks the books. See benchmarks/README.md.
"""

import argparse
import collections
import http.server
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from benchmarks.chaos import fakeproc
from benchmarks.inflight.__main__ import free_port, process_env
from generation import provenance

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/promptreel_chaos"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/2"
ENDPOINT = "fal-ai/pika/v2.2/text-to-video"
# The loss columns: each must be 0.
LOSSES = (
    "not_terminal",
    "charged_twice",
    "refunds_missing",
    "captures_missing",
    "ledger_mismatch_accounts",
    "in_flight_drift_accounts",
    "duplicate_output_files",
    "orphan_output_files",
    "webhooks_missing",
    "webhooks_doubled",
    "webhooks_wrong_event",
    "allowance_not_returned",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="generations (default 300)")
    parser.add_argument(
        "--kills", type=int, default=3, help="SIGKILLs of the cluster and of the tracker (each)"
    )
    parser.add_argument("--rate", type=float, default=10.0, help="creates per second")
    parser.add_argument("--users", type=int, default=5, help="accounts the generations share")
    parser.add_argument(
        "--error-rate", type=float, default=0.2, help="share of fal queue calls that fail"
    )
    parser.add_argument(
        "--ambiguous-rate",
        type=float,
        default=0.02,
        help="share of submits fal queues but whose answer is lost (default 0.02)",
    )
    parser.add_argument("--drop-rate", type=float, default=0.15, help="fal webhooks never sent")
    parser.add_argument("--dup-rate", type=float, default=0.15, help="fal webhooks sent twice")
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.05,
        help="share of generations fal fails (half a 422, half request timeouts on every "
        "attempt, which we retry until we give up)",
    )
    parser.add_argument(
        "--cancel-rate", type=float, default=0.05, help="share canceled by their owner"
    )
    parser.add_argument("--queue", type=float, default=0.5, help="s a job waits in fal's queue")
    parser.add_argument("--inference", type=float, default=3.0, help="s a job runs at fal")
    parser.add_argument(
        "--window",
        type=float,
        help="kills fall in this many s from the first create (default: the create time + "
        "the fake's queue and run time + 10 s)",
    )
    parser.add_argument("--seed", type=int, help="random seed (kill moments, the fake's faults)")
    parser.add_argument("--workers", type=int, default=2, help="Q_WORKERS")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="s to wait for drain")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--logs", help="keep the processes' logs in this directory")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny run for the test suite: --n 20 --kills 1, 20 creates/s, 0.2 s queue + 1 s "
        "run, 10 %% failed and 10 %% canceled (explicit options still win)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        given = {item.split("=", 1)[0] for item in (sys.argv[1:] if argv is None else argv)}
        smoke = {"n": 20, "kills": 1, "rate": 20.0, "queue": 0.2, "inference": 1.0}
        smoke |= {"fail_rate": 0.1, "cancel_rate": 0.1}
        for name, value in smoke.items():
            if f"--{name.replace('_', '-')}" not in given:
                setattr(args, name, value)
    if not (args.database_url or "").startswith("postgres"):
        args.database_url = DEFAULT_DATABASE_URL
    args.redis_url = args.redis_url or DEFAULT_REDIS_URL
    if args.seed is None:
        args.seed = random.randrange(10**6)
    if args.window is None:
        args.window = args.n / args.rate + args.queue + args.inference + 10
    figures = run(args)
    print_table(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    return 0 if figures["losses"] == 0 else 1


def run(args) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="promptreel-chaos-"))
    tag = f"chaos{os.getpid()}"
    rng = random.Random(args.seed)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        fake = stack.enter_context(
            fake_fal_process(
                queue_time=args.queue,
                inference_time=args.inference,
                transient_error_rate=args.error_rate,
                ambiguous_submit_rate=args.ambiguous_rate,
                webhook_drop_rate=args.drop_rate,
                webhook_duplicate_rate=args.dup_rate,
                chaos_seed=args.seed,
            )
        )
        receiver = stack.enter_context(webhook_receiver())
        web_port = free_port()
        env = {
            **process_env(scratch=scratch, fake=fake, tag=tag, workers=args.workers),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "OPENAI_API_KEY": "",
            "CHAOS_RECEIVER_PORT": str(receiver.port),
            "CHAOS_RECEIVER_CERT": receiver.cert_path,
            # The circuit opens under 20 % errors, as it should; a probe every 5 s (not 60)
            # keeps the run short. The plans let every create through: the limits are not
            # what this measures.
            "PROVIDER_PROBE_SECONDS": "5",
            # A submit whose answer was lost (or whose tracker died mid-POST) waits for fal's
            # webhook, and is sent again only after fal's start timeout plus the longest run
            # (workflows/pipeline.py, _submit_unconfirmed): 4 h 15 min in production, a minute
            # here, with the jobs' start timeout cut to match, so a run drains.
            "FAL_START_TIMEOUT_SECONDS": "30",
            "FAL_SUBMIT_RECONCILE_SECONDS": "60",
            # A tracker killed mid-submit leaves its row submitting: the reaper (once a
            # minute) takes it up after this, not after production's 5 minutes.
            "SUBMIT_STUCK_SECONDS": "15",
            "BILLING_PLAN_OVERRIDES": json.dumps(
                {
                    "studio": {
                        "max_in_flight": 10**6,
                        "max_generations_per_day": 0,
                        "daily_free_previews": math.ceil(args.n / args.users / 4),
                    }
                }
            ),
            "DATABASE_URL": stack.enter_context(throwaway_postgres(args.database_url, tag)),
            "REDIS_URL": args.redis_url,
        }
        env.update(provenance.write_throwaway_chain(scratch / "c2pa"))
        env.update(item.split("=", 1) for item in args.env)
        stack.callback(redis_forget, args.redis_url, tag)
        os.environ.update(env)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        import django

        django.setup()
        users = make_users(args.users)

        commands = {
            "web": [
                str(Path(sys.executable).with_name("gunicorn")),
                "config.wsgi:application",
                "--workers=2",
                f"--bind=127.0.0.1:{web_port}",
                "--log-level=warning",
            ],
            "cluster": [sys.executable, "-m", "benchmarks.chaos.proc", "qcluster"],
            "tracker": [sys.executable, "manage.py", "track"],
        }
        procs = stack.enter_context(Processes(commands, env, scratch))
        time.sleep(3)  # imports done, workers forked, brokers connected

        started_at = time.time()
        kills: list[dict] = []
        killers = [
            threading.Thread(
                target=kill_now_and_then,
                args=(procs, role, sorted(rng.uniform(2, args.window) for _ in range(args.kills))),
                kwargs={"started_at": started_at, "log": kills, "rng": random.Random(rng.random())},
                daemon=True,
            )
            for role in ("cluster", "tracker")
        ]
        for killer in killers:
            killer.start()
        cancels: list = []
        canceller = threading.Thread(target=cancel_some, args=(cancels,), daemon=True)
        canceller.start()
        ids, refused = create_generations(users, args, receiver.url, started_at, rng, cancels)
        cancels.append(None)  # no more
        canceller.join()
        for killer in killers:
            killer.join()
        last_kill = max((kill["restarted_at"] for kill in kills), default=started_at)
        limit = started_at + args.time_limit
        terminal_at = wait_for(lambda: not_terminal(ids) == 0, limit)
        sent_at = wait_for(lambda: outbox_pending(ids) == 0, limit)
        time.sleep(1.0)  # the last POSTs' answers recorded by the receiver
        fal = fake["stop"]()
        figures = books(ids, scratch / "media", receiver.received(), fal)
        procs.check_logs()
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for path in scratch.glob("*.log"):
                shutil.copy(path, args.logs)

    figures.update(
        n=args.n,
        created=len(ids),
        refused_at_create=refused,
        seed=args.seed,
        settings={
            "error_rate": args.error_rate,
            "ambiguous_rate": args.ambiguous_rate,
            "drop_rate": args.drop_rate,
            "dup_rate": args.dup_rate,
            "fail_rate": args.fail_rate,
            "cancel_rate": args.cancel_rate,
            "queue_s": args.queue,
            "inference_s": args.inference,
            "rate": args.rate,
            "users": args.users,
            "workers": args.workers,
            "extra_env": args.env,
        },
        kills=kills,
        drain_s=(terminal_at - last_kill) if terminal_at else None,
        webhooks_sent_s=(sent_at - last_kill) if sent_at else None,
        elapsed_s=time.time() - started_at,
        load_average=os.getloadavg(),
    )
    figures["losses"] = sum(figures[name] for name in LOSSES) + (len(ids) < args.n)
    return figures


# --- The fake fal, the receiver, the database ----------------------------------------------


@contextmanager
def fake_fal_process(**options):
    """The fake fal in a process of its own (its CPU is not ours, its threads not our GIL)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=fakeproc.serve, args=(theirs, options), daemon=True)
    process.start()
    if not ours.poll(30):
        raise RuntimeError("the fake fal did not start")
    info = ours.recv()

    def stop() -> dict:
        ours.send("stop")
        if not ours.poll(60):
            raise RuntimeError("the fake fal did not answer")
        return ours.recv()

    info["stop"] = stop
    try:
        yield info
    finally:
        if process.is_alive():
            process.terminate()
        process.join(10)


class Receiver:
    """The API clients' webhook endpoint: HTTPS on loopback, answers 204, records each POST."""

    def __init__(self):
        from tests.fakefal.certs import get_cert_files

        self._received: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                with receiver._lock:
                    receiver._received.append(
                        {
                            "webhook_id": self.headers.get("webhook-id"),
                            "type": payload.get("type"),
                            "generation": (payload.get("data") or {}).get("id"),
                            "at": time.time(),
                        }
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        certs = get_cert_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.cert_path, certs.key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hooks"
        self.cert_path = certs.cert_path
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[dict]:
        with self._lock:
            return list(self._received)


@contextmanager
def webhook_receiver():
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@contextmanager
def throwaway_postgres(url: str, suffix: str):
    """A fresh database named after --database-url's (`<name>_<suffix>`), dropped afterwards."""
    import psycopg

    base, name = url.rsplit("/", 1)
    fresh = f"{name}_{suffix}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh}"')
    try:
        yield f"{base}/{fresh}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')


def redis_forget(url: str, tag: str) -> None:
    """Delete the run's keys (queue, cache: all carry the run's tag)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"*{tag}*", count=1000))
    if keys:
        client.delete(*keys)


# --- The processes and the killing -----------------------------------------------------------


class Processes:
    """The product's processes, each the leader of its own process group (killed as one)."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], scratch: Path):
        self.commands, self.env, self.scratch = commands, env, scratch
        self.procs: dict[str, subprocess.Popen] = {}
        self.generation: collections.Counter[str] = collections.Counter()

    def __enter__(self):
        for role in self.commands:
            self.start(role)
        return self

    def start(self, role: str) -> None:
        self.generation[role] += 1
        log = open(self.scratch / f"{role}-{self.generation[role]}.log", "wb")  # noqa: SIM115
        self.procs[role] = subprocess.Popen(
            self.commands[role],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()  # the child has its own copy

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # qcluster's workers, too
        proc.wait()

    def __exit__(self, *exc):
        for proc in self.procs.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything the leader left behind

    def check_logs(self) -> None:
        """Show the tail of any log with a traceback (the product's own errors)."""
        for path in sorted(self.scratch.glob("*.log")):
            text = path.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {path.name} (last traceback):", file=sys.stderr)
                print(text[text.rindex("Traceback") :][:3000], file=sys.stderr)


def kill_now_and_then(procs: Processes, role: str, moments: list[float], *, started_at, log, rng):
    """SIGKILL `role`'s process group at each moment (s after started_at), then restart it."""
    for moment in moments:
        delay = started_at + moment - time.time()
        if delay > 0:
            time.sleep(delay)
        killed_at = time.time()
        procs.kill(role)
        time.sleep(rng.uniform(0.5, 2.0))  # down for a moment, as a supervisor would restart it
        procs.start(role)
        log.append({"role": role, "at_s": killed_at - started_at, "restarted_at": time.time()})


# --- The generations -------------------------------------------------------------------------


def make_users(count: int) -> list:
    from accounts.models import User
    from billing import services as billing

    users = []
    for index in range(count):
        user = User.objects.create_user(email=f"chaos{index}@example.com")
        account = billing.account_for(user)
        billing.plan_change(account=account, plan="studio", source="staff", reason="benchmark")
        billing.credits_adjust(user=user, amount=10**6, reason="benchmark credits")
        users.append(user)
    return users


def create_generations(
    users, args, webhook_url: str, started_at: float, rng, cancels: list
) -> tuple[list, int]:
    """N creates at `rate` per second: previews (free while the day's allowance lasts, then
    paid) and paid 1080p renders, each subscribed to its webhooks (every event). A share
    carries the fake's markers for a job fal fails; a share is put on `cancels` (when, id)."""
    from core.errors import InputError
    from workflows.generations import generation_create

    ids, refused = [], 0
    for index in range(args.n):
        due = started_at + index / args.rate
        if due > time.time():
            time.sleep(due - time.time())
        hd = rng.random() < 0.4
        # tests/fakefal's prompt markers: fal answers 422, or times out on every attempt.
        marker = ""
        if rng.random() < args.fail_rate:
            marker = rng.choice([" fail-422", " fail-timeout"])
        try:
            generation = generation_create(
                user=users[index % len(users)],
                endpoint_id=ENDPOINT,
                inputs={
                    "prompt": f"a paper boat on a quiet river, take {index}{marker}",
                    "resolution": "1080p" if hd else "720p",
                    "duration": 5,
                    "aspect_ratio": "16:9",
                },
                seed=10**6 + index,  # tells the fake's requests apart: fal jobs per generation
                webhook_url=f"{webhook_url}/{index}",
            )
        except InputError as exc:
            refused += 1
            print(f"create {index} refused: {exc}", file=sys.stderr)
            continue
        ids.append(generation.pk)
        if rng.random() < args.cancel_rate:
            cancels.append((time.time() + rng.uniform(0, 6), generation.pk))
    return ids, refused


def cancel_some(cancels: list) -> None:
    """The owners who press Cancel a few seconds after creating (the real cancel service)."""
    from django.db import close_old_connections

    from generation.models import Generation
    from workflows.generations import generation_cancel
    from workflows.lifecycle import Actor

    done = 0
    while True:
        if done == len(cancels):
            time.sleep(0.05)
            continue
        item = cancels[done]
        if item is None:
            break
        done += 1
        when, pk = item
        if when > time.time():
            time.sleep(when - time.time())
        close_old_connections()
        generation = Generation.objects.select_related("user").get(pk=pk)
        generation_cancel(generation=generation, actor=Actor(user=generation.user))
    close_old_connections()


def wait_for(done, limit: float, every: float = 0.5) -> float | None:
    """The time `done()` first held, or None if the limit passed first."""
    from django.db import close_old_connections

    while True:
        close_old_connections()
        if done():
            return time.time()
        if time.time() > limit:
            return None
        time.sleep(every)


def not_terminal(ids: list) -> int:
    from generation.models import TERMINAL, Generation

    return Generation.objects.filter(pk__in=ids).exclude(state__in=TERMINAL).count()


def outbox_pending(ids: list) -> int:
    from api.models import WebhookDelivery

    return WebhookDelivery.objects.filter(
        generation_id__in=ids, status=WebhookDelivery.Status.PENDING
    ).count()


# --- The books -------------------------------------------------------------------------------


def books(ids: list, media_root: Path, received: list[dict], fal: dict) -> dict:
    from django.db.models import Sum

    from api.models import WebhookDelivery
    from api.webhooks import EVENT_FOR_STATE
    from billing.holds import in_flight_truth
    from billing.limits import today
    from billing.models import CreditAccount, LedgerEntry
    from core.models import AuditAction, AuditEntry
    from generation.models import TERMINAL, Generation, State

    rows = {row["id"]: row for row in Generation.objects.filter(pk__in=ids).values()}
    states = collections.Counter(row["state"] for row in rows.values())

    # Money: each hold settled once, the right way; balances equal their entries.
    entries = collections.defaultdict(list)
    for entry in LedgerEntry.objects.filter(generation_id__in=ids).values(
        "generation_id", "kind", "amount", "monthly", "purchased"
    ):
        entries[entry["generation_id"]].append(entry)
    charged_twice = refunds_missing = captures_missing = 0
    for pk, row in rows.items():
        kinds = collections.Counter(entry["kind"] for entry in entries[pk])
        settled = kinds["capture"] + kinds["release"]
        if settled > 1 or kinds["hold"] > 1:
            charged_twice += 1
        if row["state"] == State.SUCCEEDED and not kinds["capture"]:
            captures_missing += 1
        if row["state"] in TERMINAL and row["state"] != State.SUCCEEDED and not kinds["release"]:
            refunds_missing += 1
    ledger_mismatch = in_flight_drift = allowance_wrong = 0
    free_kept = collections.Counter(
        row["user_id"]
        for row in rows.values()
        if row["free_preview"] and row["state"] != State.FAILED
    )
    for account in CreditAccount.objects.filter(user__email__startswith="chaos"):
        # A free preview that failed gives its allowance back (billing.holds.credits_settle).
        if account.usage_day == today():
            allowance_wrong += abs(account.free_today - free_kept[account.user_id])
        sums = LedgerEntry.objects.filter(account=account).aggregate(
            monthly=Sum("monthly"), purchased=Sum("purchased")
        )
        if (sums["monthly"] or 0, sums["purchased"] or 0) != (
            account.balance_monthly,
            account.balance_purchased,
        ):
            ledger_mismatch += 1
        if account.in_flight != in_flight_truth(account):
            in_flight_drift += 1

    # Storage: one video and one poster per succeeded row, under the names it records.
    kept = {row["output"] for row in rows.values() if row["output"]}
    kept |= {row["poster"] for row in rows.values() if row["poster"]}
    files = collections.Counter()
    orphans = 0
    for folder in ("outputs", "posters"):
        for path in (media_root / folder).rglob("*"):
            if path.is_file():
                name = path.relative_to(media_root).as_posix()
                files[(folder, path.name.split(".")[0].split("_")[0])] += 1
                orphans += name not in kept
    duplicates = sum(count - 1 for count in files.values())

    # Our webhooks: each announced state once, to the client that subscribed.
    expected = {
        (str(pk), EVENT_FOR_STATE[row["state"]])
        for pk, row in rows.items()
        if row["state"] in EVENT_FOR_STATE
    }
    seen = collections.defaultdict(set)
    posts = collections.Counter()
    first_post: dict[str, float] = {}
    resent_after = []  # s between a webhook-id's first POST and each repeat
    for item in received:
        seen[(item["generation"], item["type"])].add(item["webhook_id"])
        posts[(item["generation"], item["type"])] += 1
        if item["webhook_id"] in first_post:
            resent_after.append(round(item["at"] - first_post[item["webhook_id"]], 1))
        first_post.setdefault(item["webhook_id"], item["at"])
    missing = len(expected - seen.keys())
    doubled = sum(1 for ids_ in seen.values() if len(ids_) > 1)
    wrong = len(seen.keys() - expected)
    resent = sum(posts.values()) - sum(len(ids_) for ids_ in seen.values())
    outbox = collections.Counter(
        WebhookDelivery.objects.filter(generation_id__in=ids).values_list("status", flat=True)
    )

    # fal: paid jobs per generation (each accepted submit is one; a second is paid twice).
    jobs = collections.Counter(
        request["seed"] - 10**6 for request in fal["requests"] if request["seed"] is not None
    )
    # fal bills what it ran, not its own 5xx failures (fal-protocol.md): a retry after a
    # request timeout is a new job but not a second payment.
    billed = collections.Counter(
        request["seed"] - 10**6
        for request in fal["requests"]
        if request["seed"] is not None and request["outcome"] != "infra_error"
    )
    per_generation = [jobs.get(row["seed"] - 10**6, 0) for row in rows.values()]
    return {
        "states": dict(states),
        "not_terminal": sum(n for state, n in states.items() if state not in TERMINAL),
        "free_previews": sum(1 for row in rows.values() if row["free_preview"]),
        "paid": sum(1 for row in rows.values() if not row["free_preview"]),
        "charged_twice": charged_twice,
        "refunds_missing": refunds_missing,
        "captures_missing": captures_missing,
        "ledger_mismatch_accounts": ledger_mismatch,
        "in_flight_drift_accounts": in_flight_drift,
        "allowance_not_returned": allowance_wrong,
        "duplicate_output_files": duplicates,
        "orphan_output_files": orphans,
        "webhooks_expected": len(expected),
        "webhooks_missing": missing,
        "webhooks_doubled": doubled,
        "webhooks_wrong_event": wrong,
        "webhooks_resent_same_id": resent,
        "webhooks_resent_after_s": resent_after,
        "webhook_attempts": dict(
            collections.Counter(
                WebhookDelivery.objects.filter(generation_id__in=ids).values_list(
                    "attempts", flat=True
                )
            )
        ),
        "outbox": dict(outbox),
        "fal_jobs": sum(per_generation),
        "fal_jobs_per_generation": sum(per_generation) / max(len(per_generation), 1),
        "generations_paid_twice_at_fal": sum(1 for count in billed.values() if count > 1),
        "extra_paid_fal_jobs": sum(count - 1 for count in billed.values() if count > 1),
        "fal_jobs_not_ours": sum(jobs.values()) - sum(per_generation),
        "fal_chaos": fal["chaos"],
        "fal_webhook_posts": fal["webhook_posts"],
        "fake_errors": fal["errors"],
        "attempts": dict(collections.Counter(row["attempts"] for row in rows.values())),
        # Jobs that failed though fal was not told to fail them: the faults alone ended them.
        "failed_by_faults_alone": sum(
            1
            for row in rows.values()
            if row["state"] == State.FAILED and "fail-" not in row["prompt"]
        ),
        # The retries and repairs the audit log names (workflows.lifecycle writes them).
        "retries_by_cause": dict(
            collections.Counter(
                f"{entry['actor_repr']}: {entry['reason'].split(':')[0]}"
                for entry in AuditEntry.objects.filter(
                    action=AuditAction.GENERATION_RETRY, target_id__in=[str(pk) for pk in ids]
                ).values("actor_repr", "reason")
            )
        ),
        "error_codes": dict(
            collections.Counter(row["error_code"] for row in rows.values() if row["error_code"])
        ),
    }


def print_table(f: dict) -> None:
    settings = f["settings"]
    kills = collections.Counter(kill["role"] for kill in f["kills"])
    rows = [
        (
            "generations",
            f"{f['created']} of {f['n']} created ({f['paid']} paid, {f['free_previews']} free "
            f"previews; {settings['users']} accounts, {settings['rate']:g}/s), seed {f['seed']}",
        ),
        (
            "fake fal",
            f"{settings['error_rate']:.0%} of queue calls fail, {settings['ambiguous_rate']:.0%} "
            f"of submits ambiguous, webhooks {settings['drop_rate']:.0%} dropped / "
            f"{settings['dup_rate']:.0%} doubled, {settings['fail_rate']:.0%} of jobs failed; "
            f"{settings['queue_s']:g} s queue + {settings['inference_s']:g} s run",
        ),
        ("canceled by owners", f"{settings['cancel_rate']:.0%} asked"),
        (
            "SIGKILLs",
            f"cluster {kills['cluster']}, tracker {kills['tracker']} at "
            + ", ".join(f"{kill['role'][0]}{kill['at_s']:.0f}s" for kill in f["kills"]),
        ),
        ("all terminal", f"{'yes' if not f['not_terminal'] else 'NO'} {f['states']}"),
        ("time to drain after last kill", _seconds(f["drain_s"])),
        ("  webhooks all sent after", _seconds(f["webhooks_sent_s"])),
        ("rows charged twice", f["charged_twice"]),
        ("refunds missing", f["refunds_missing"]),
        ("captures missing", f["captures_missing"]),
        ("ledger sum ≠ cached balance (accounts)", f["ledger_mismatch_accounts"]),
        ("in_flight counter drift (accounts)", f["in_flight_drift_accounts"]),
        ("free previews' allowance not given back", f["allowance_not_returned"]),
        ("duplicate output files", f["duplicate_output_files"]),
        ("orphan output files", f["orphan_output_files"]),
        ("our webhooks missing", f"{f['webhooks_missing']} of {f['webhooks_expected']}"),
        ("our webhooks doubled (distinct ids)", f["webhooks_doubled"]),
        ("our webhooks for a wrong state", f["webhooks_wrong_event"]),
        (
            "  re-sent with the same id",
            f"{f['webhooks_resent_same_id']} (after s: {f['webhooks_resent_after_s']}; "
            f"attempts per delivery {f['webhook_attempts']})",
        ),
        (
            "fal jobs per generation",
            f"{f['fal_jobs_per_generation']:.3f} ({f['fal_jobs']} jobs; "
            f"{f['generations_paid_twice_at_fal']} generations paid at fal more than once, "
            f"{f['extra_paid_fal_jobs']} extra paid jobs)",
        ),
        ("fal faults injected", ", ".join(f"{k} {v}" for k, v in sorted(f["fal_chaos"].items()))),
        ("submits per row (attempts)", f["attempts"]),
        ("retries (who: why)", f["retries_by_cause"]),
        ("failed by the faults alone", f["failed_by_faults_alone"]),
        ("error codes", f["error_codes"] or "none"),
        ("wall time", f"{f['elapsed_s']:.0f} s, load average {f['load_average'][0]:.1f}"),
        ("LOSSES (target 0)", f["losses"]),
    ]
    if f["fake_errors"]:
        rows.append(("fake fal's own errors", f["fake_errors"][:3]))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def _seconds(value) -> str:
    return "never (time limit)" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    sys.exit(main())
