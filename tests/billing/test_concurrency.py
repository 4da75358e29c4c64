"""Races between real threads (and processes) with their own database connections.

Runs on SQLite (BEGIN IMMEDIATE serialises writers) and on PostgreSQL (conditional UPDATEs of
the account that restate each create's quote, and row locks) — CI's second run sets
DATABASE_URL.
"""

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from api.services import apikey_create
from billing import holds, services
from billing.errors import InsufficientCredits, PlanLimit
from billing.models import LedgerEntry
from generation.models import Generation
from tests.support.processes import ROOT, process_env
from workflows.generations import KeySpendCap, generation_create

from .conftest import assert_ledger_consistent, give_credits

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("one_thread_storm_at_a_time"),
]

T2V = "fal-ai/pika/v2.2/text-to-video"


@pytest.fixture(autouse=True)
def _no_submission(monkeypatch):
    # Only the create races here; submitting (inline in sync mode) is another test's business.
    monkeypatch.setattr("workflows.generations.enqueue_submit", lambda generation_id: None)


def storm(user, count: int, api_key=None, **inputs) -> Counter:
    """`count` threads call generation_create for `user` at the same moment."""
    barrier = threading.Barrier(count)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait(timeout=30)
            generation_create(
                user=user,
                endpoint_id=T2V,
                inputs={"prompt": "race", "resolution": "720p", "duration": 5, **inputs},
                api_key=api_key,
            )
            result = "created"
        except (InsufficientCredits, PlanLimit, KeySpendCap) as exc:
            result = exc.code
        except Exception as exc:  # noqa: BLE001 - reported in the assertion
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_fifty_threads_balance_for_exactly_ten(user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"studio": {"max_in_flight": 100, "daily_free_previews": 0}}'
    account = services.account_for(user)
    services.plan_change(account=account, plan="studio", source="staff")
    account = give_credits(user, 400)  # 10 × 40 credits

    outcomes = storm(user, 50)

    assert outcomes == Counter(created=10, insufficient_credits=40), outcomes
    assert Generation.objects.filter(user=user).count() == 10
    account.refresh_from_db()
    assert account.balance == 0
    assert LedgerEntry.objects.filter(account=account, kind="hold").count() == 10
    assert_ledger_consistent(account)


def test_daily_allowance_runs_out_exactly_at_its_limit(user, settings):
    settings.FREE_DAILY_PREVIEWS = 5
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 100}}'

    outcomes = storm(user, 20)

    assert outcomes == Counter(created=5, insufficient_credits=15), outcomes
    assert Generation.objects.filter(user=user, free_preview=True).count() == 5
    account = services.account_for(user)
    assert (account.free_today, account.made_today, account.in_flight) == (5, 5, 5)
    assert_ledger_consistent(services.account_for(user))


def test_a_keys_monthly_cap_holds_under_a_race(user, settings):
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 100, "daily_free_previews": 0}}'
    give_credits(user, 10_000)
    capped, _ = apikey_create(user=user, name="capped", scopes=["generations:write"],
                              monthly_credit_cap=120)  # fmt: skip

    outcomes = storm(user, 20, api_key=capped)

    assert outcomes == Counter(created=3, key_spend_cap=17), outcomes  # 3 × 40 credits
    assert services.account_for(user).balance == 10_000 - 120
    assert services.account_for(user).in_flight == 3


def test_counters_stay_exact_through_a_race(user, settings):
    settings.BILLING_PLAN_OVERRIDES = (
        '{"free": {"max_in_flight": 7, "max_generations_per_day": 100, "daily_free_previews": 3}}'
    )
    give_credits(user, 160)  # 3 free previews + 4 paid renders fill the 7 slots

    outcomes = storm(user, 30)

    assert outcomes == Counter(created=7, plan_limit=23), outcomes
    account = services.account_for(user)
    assert (account.in_flight, account.made_today, account.free_today) == (7, 7, 3)
    assert account.balance == 0
    assert Generation.objects.filter(user=user, free_preview=True).count() == 3
    assert_ledger_consistent(account)


def test_jobs_in_flight_limit_holds_under_a_race(user):
    give_credits(user, 1000)
    outcomes = storm(user, 10)
    assert outcomes == Counter(created=1, plan_limit=9), outcomes
    account = services.account_for(user)
    assert account.balance == 1000, "the one created was a free preview"
    assert_ledger_consistent(account)


CHILD = """
import sys
from django.contrib.auth import get_user_model
from billing.errors import BillingRefusal
from workflows.generations import KeySpendCap, generation_create
user = get_user_model().objects.get(email=sys.argv[1])
for _ in range(int(sys.argv[2])):
    try:
        generation_create(user=user, endpoint_id=sys.argv[3],
                          inputs={"prompt": "p", "resolution": "720p", "duration": 5})
        print("created", flush=True)
    except BillingRefusal as exc:
        print(exc.code, flush=True)
"""


@pytest.mark.slow
def test_daily_allowance_is_exact_across_processes(user, tmp_path):
    env = process_env(
        FREE_DAILY_PREVIEWS=4,
        BILLING_PLAN_OVERRIDES='{"free": {"max_in_flight": 100}}',
        Q_QUEUE_NAME="billing-race-test",
    )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    shell = [sys.executable, "manage.py", "shell", "--no-imports"]
    children = [
        subprocess.Popen(  # noqa: S603
            [
                *shell,
                "-c",
                f"import sys; sys.argv = ['x', {user.email!r}, '3', {T2V!r}]; "
                f"exec(open({str(script)!r}).read())",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    lines = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0, out
        lines += [line for line in out.splitlines() if line in ("created", "insufficient_credits")]
    assert Counter(lines) == Counter(created=4, insufficient_credits=5), lines
    assert Generation.objects.filter(user=user).count() == 4
    assert services.account_for(user).free_today == 4


def test_a_capped_key_never_deadlocks_when_a_create_holds_the_account_lock(
    user, settings, monkeypatch
):
    """One create on its last attempts (quoting under the account lock) while another create on
    the same capped key starts: both take the key's lock first, so both finish."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: SQLite serialises whole transactions")
    settings.BILLING_PLAN_OVERRIDES = '{"free": {"max_in_flight": 100, "daily_free_previews": 0}}'
    give_credits(user, 10_000)
    capped, _ = apikey_create(user=user, name="capped", scopes=["generations:write"],
                              monthly_credit_cap=10_000)  # fmt: skip
    a_locked, b_started = threading.Event(), threading.Event()
    real_quote, real_hold = holds.credits_quote, holds.credits_hold
    stale_left = [2]

    def quote(**kwargs):
        result = real_quote(**kwargs)
        if threading.current_thread().name == "A" and kwargs["lock"]:
            a_locked.set()
            b_started.wait(10)
            time.sleep(0.3)  # B is now waiting for a lock
        return result

    def hold(**kwargs):
        if threading.current_thread().name == "A" and stale_left[0]:
            stale_left[0] -= 1
            raise holds.HoldStale("forced, as under contention")
        return real_hold(**kwargs)

    monkeypatch.setattr(holds, "credits_quote", quote)
    monkeypatch.setattr(holds, "credits_hold", hold)
    results = {}

    def run():
        name = threading.current_thread().name
        if name == "B":
            a_locked.wait(10)
            b_started.set()
        try:
            generation_create(
                user=user,
                endpoint_id=T2V,
                inputs={"prompt": name, "resolution": "720p", "duration": 5},
                api_key=capped,
            )
            results[name] = "created"
        except Exception as exc:  # noqa: BLE001 - reported in the assertion
            results[name] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    threads = [threading.Thread(target=run, name=name) for name in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {"A": "created", "B": "created"}, results
    assert services.account_for(user).in_flight == 2
