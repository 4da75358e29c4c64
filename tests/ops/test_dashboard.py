"""The staff dashboard: its figures on a fixture of known rows (expected values worked out by
hand below, not by the dashboard's code), the rollup run twice, staff only, bad input."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditAccount, LedgerEntry
from desk import rollup, selectors
from desk.models import GenerationHour
from generation.models import State, Tier
from moderation.models import Report
from tests.factories import GenerationFactory, UserFactory

pytestmark = pytest.mark.django_db

S = dt.timedelta(seconds=1)


def _midnight(day):
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def make(user, created, state, *, stages=(), price="0.20", credits=40, **fields):
    """A generation created at `created` that spent `stages` seconds in submit, queue, run and
    finalize (as many as it reached); captured in the ledger if it succeeded."""
    times = {"queued_at": created}
    moment = created
    for column, seconds in zip(
        ("in_queue_at", "in_progress_at", "finalizing_at", "finished_at"), stages, strict=False
    ):
        moment += seconds * S
        times[column] = moment
    if state in (State.FAILED, State.CANCELED, State.BLOCKED) and "finished_at" not in times:
        times["finished_at"] = fields.pop("finished_at", moment + S)
    if state == State.SUCCEEDED:
        fields.setdefault("output", "outputs/x.mp4")
    generation = GenerationFactory(
        user=user,
        state=state,
        backend="fal",
        created_at=created,
        fal_price_usd=price,
        credit_cost=credits,
        **times,
        **fields,
    )
    account, _ = CreditAccount.objects.get_or_create(user=user)
    LedgerEntry.objects.create(
        account=account,
        kind="hold",
        amount=-credits,
        purchased=-credits,
        generation=generation,
        idempotency_key=f"gen:{generation.pk}:hold",
        created_at=created,
    )
    if state == State.SUCCEEDED:
        LedgerEntry.objects.create(
            account=account,
            kind="capture",
            amount=0,
            generation=generation,
            idempotency_key=f"gen:{generation.pk}:capture",
            created_at=times["finished_at"],
        )
    return generation


@pytest.fixture
def known_rows(db):
    now = timezone.now()
    current = now.replace(minute=0, second=0, microsecond=0)
    yesterday = now.date() - dt.timedelta(days=1)
    ten, two = (
        _midnight(yesterday) + dt.timedelta(hours=10),
        _midnight(yesterday) + dt.timedelta(hours=14),
    )
    user, reporter = UserFactory(), UserFactory()
    a, b = "fal-ai/pika/v2.2/text-to-video", "fal-ai/pika/v2.2/image-to-video"
    # Yesterday 10:00, endpoint a, paid previews: four ready, two failed.
    for submit, queue, run, finalize in (
        (2, 10, 30, 5),
        (4, 20, 60, 5),
        (6, 30, 90, 5),
        (8, 40, 120, 10),
    ):
        make(user, ten, State.SUCCEEDED, stages=(submit, queue, run, finalize), endpoint_id=a)
    make(user, ten, State.FAILED, error_code="provider_error", endpoint_id=a)  # never submitted
    make(  # fal finished it (billed), our copy failed
        user, ten, State.FAILED, stages=(3, 15, 45, 1), error_code="download_failed", endpoint_id=a
    )
    # Yesterday 14:00: two free previews and an HD render ready; blocked, held, canceled.
    free = [
        make(
            user,
            two,
            State.SUCCEEDED,
            stages=(1, 1, 10, 2),
            price="0.10",
            credits=0,
            free_preview=True,
            endpoint_id=a,
        )
        for _ in range(2)
    ]
    make(
        user,
        two,
        State.SUCCEEDED,
        stages=(1, 1, 10, 2),
        price="0.45",
        credits=90,
        tier=Tier.HD,
        endpoint_id=b,
    )
    make(user, two, State.BLOCKED, endpoint_id=a)
    make(user, two, State.HELD, endpoint_id=a)
    make(user, two, State.CANCELED, endpoint_id=b)
    Report.objects.create(generation=free[0], reporter=reporter, reason="hate", created_at=two)
    # This hour (counted live): one ready, one failed.
    make(user, current, State.SUCCEEDED, stages=(3, 7, 20, 4), endpoint_id=a)
    make(user, current, State.FAILED, error_code="timeout", endpoint_id=a)
    rollup.rollup_days(days=[yesterday])
    return now, yesterday


def test_dashboard_figures_on_known_rows(known_rows):
    now, yesterday = known_rows
    figures = selectors.dashboard(days=7, day=yesterday, now=now)
    day = {p.start.date(): p for p in figures["daily"]}[yesterday]

    assert day.generations == 12
    assert (day.states["succeeded"], day.states["failed"]) == (7, 2)
    assert day.failure_rate == pytest.approx(2 / 9)
    assert (day.states["blocked"], day.states["held"], day.states["canceled"]) == (1, 1, 1)
    assert day.free_previews == 2
    assert day.tiers == {"Paid preview": 9, "Free preview": 2, "HD": 1}
    assert day.reports == 1
    # fal ran 4 × $0.20 + the failed copy's $0.20 + 2 × $0.10 + $0.45; the unsubmitted failure,
    # the blocked, held and canceled rows cost nothing.
    assert (day.fal_runs, day.fal_usd) == (8, Decimal("1.65"))
    # Charged: 4 × 40 + 2 × 0 + 90 credits, at $0.01.
    assert (day.captured_credits, day.revenue_usd) == (250, Decimal("2.50"))
    # End to end of the seven ready: 14, 14, 14, 47, 89, 131, 178 s. Nearest rank: the
    # median is the 4th (ceil(0.5 × 7)), the p95 the 7th (ceil(0.95 × 7)).
    assert day.stages["total"] == (7, 47, 178)

    hours = {p.start.hour: p for p in figures["hourly"]}
    ten = hours[10]
    assert ten.errors == {"provider_error": 1, "download_failed": 1}
    # Wait for submit at 10:00: 2, 3, 4, 6, 8 s (the failed copy included, the unsubmitted not).
    assert ten.stages["submit"] == (5, 4, 8)
    assert ten.stages["queue"] == (5, 20, 40)
    assert ten.stages["run"] == (5, 60, 120)
    assert ten.stages["finalize"] == (4, 5, 10)  # ready ones only: 5, 5, 5, 10
    assert ten.stages["total"] == (4, 89, 178)
    assert hours[14].generations == 6 and hours[13].generations == 0

    today = {p.start.date(): p for p in figures["daily"]}[now.date()]
    assert (today.generations, today.failure_rate, today.fal_usd) == (2, 0.5, Decimal("0.20"))
    assert today.revenue_usd == Decimal("0.40")

    totals = figures["totals"]
    assert totals.generations == 14
    assert totals.errors == {"provider_error": 1, "download_failed": 1, "timeout": 1}
    assert (totals.fal_usd, totals.revenue_usd) == (Decimal("1.85"), Decimal("2.90"))
    assert figures["held_now"] == 1 and figures["open_reports"] == 1


def test_the_current_hour_is_live_with_its_percentiles(known_rows):
    now, _ = known_rows
    figures = selectors.dashboard(days=7, day=now.date(), now=now)
    current = figures["hourly"][-1]
    assert current.start.hour == now.hour
    assert current.states == {"succeeded": 1, "failed": 1}
    assert current.stages["run"] == (1, 20, 20)
    assert current.stages["total"] == (1, 34, 34)  # 3 + 7 + 20 + 4


def test_the_rollup_recomputes_to_the_same_rows(known_rows):
    _, yesterday = known_rows
    before = sorted(
        GenerationHour.objects.values_list("hour", "state", "error_code", "generations")
    )
    rollup.rollup_days(days=[yesterday])
    rollup.rollup_days(days=[yesterday])
    after = sorted(GenerationHour.objects.values_list("hour", "state", "error_code", "generations"))
    assert before == after and len(after) == 8


def test_rollup_recent_takes_old_rows_that_ended_since_its_last_run(user):
    now = timezone.now()
    long_ago = now - dt.timedelta(days=10)
    rollup.rollup_recent(now=now - dt.timedelta(minutes=5))
    # Held ten days ago, blocked a minute ago: its old day must be counted again.
    make(user, long_ago, State.BLOCKED, finished_at=now - dt.timedelta(minutes=1))
    days = rollup.rollup_recent(now=now)
    assert long_ago.date() in days and now.date() in days
    assert GenerationHour.objects.get(state="blocked").generations == 1


def test_the_page_shows_the_figures_to_staff(known_rows, client):
    now, yesterday = known_rows
    client.force_login(UserFactory(is_staff=True))
    page = client.get("/admin/dashboard/", {"days": 7, "day": yesterday.isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    assert "$1.85" in html and "$2.90" in html  # spend and revenue of the 7 days
    assert "download_failed" in html and "<svg" in html
    assert "style=" not in html.split('id="content"', 1)[1]  # no inline style: the CSP forbids it
    index = client.get("/admin/")
    assert 'href="/admin/dashboard/"' in index.content.decode()


def test_only_staff_see_the_dashboard(client, user):
    assert client.get("/admin/dashboard/").status_code == 302  # signed out: to the login page
    client.force_login(user)
    answer = client.get("/admin/dashboard/")
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    assert b"Failure rate" not in answer.content


@pytest.mark.parametrize(
    "query, named",
    [({"days": "5"}, "days"), ({"day": "tomorrow"}, "day"), ({"day": "2999-01-01"}, "day")],
)
def test_bad_parameters_are_named_in_a_400(client, query, named):
    client.force_login(UserFactory(is_staff=True))
    answer = client.get("/admin/dashboard/", query)
    assert answer.status_code == 400
    assert f"{named}:" in answer.content.decode()


def test_the_command_fills_every_day_once_after_a_deployment(user):
    from io import StringIO

    from django.core.management import call_command

    old = timezone.now() - dt.timedelta(days=20)
    make(user, old, State.FAILED, error_code="timeout")
    out = StringIO()
    call_command("dashboard_rollup", "--all", stdout=out)
    assert "recomputed 21 day(s)" in out.getvalue()
    assert GenerationHour.objects.get(error_code="timeout").hour == old.replace(
        minute=0, second=0, microsecond=0
    )


def test_a_bar_chart_scales_its_bars_and_escapes_its_text():
    from desk import charts

    svg = str(
        charts.bar_chart(
            title="<b>t</b>",
            labels=["a", "<script>"],
            series=[("succeeded", "Ready"), ("failed", "Failed")],
            values=[{"succeeded": 20, "failed": 4}, {"succeeded": 10}],
        )
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    # Highest stack 24: the axis goes to 25 in steps of 5; the plot is 220 - 10 - 26 = 184 high.
    assert ">25</text>" in svg and ">5</text>" in svg
    assert 'height="147.2"' in svg  # 20 / 25 × 184
    assert 'height="73.6"' in svg  # 10 / 25 × 184
    assert svg.count("<rect") == 3  # an empty segment draws nothing


def test_stripe_income_is_the_paying_events_amount(client, settings, user):
    from billing.models import StripeEvent
    from billing.services import account_for
    from tests.billing.test_stripe import SECRET, deliver, event, pack_session

    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_fake", SECRET
    settings.BILLING_ENABLED = True
    account = account_for(user)
    CreditAccount.objects.filter(pk=account.pk).update(stripe_customer_id="cus_alice")
    account.refresh_from_db()
    paid = {**pack_session(account), "amount_total": 500, "currency": "usd"}
    # The same session in a second event, and its async success: already granted, no income.
    for _ in range(2):
        deliver(client, event("checkout.session.completed", paid))
    later = {**paid, "amount_total": 999}
    deliver(client, event("checkout.session.async_payment_succeeded", later))
    assert sorted(StripeEvent.objects.values_list("income_minor", flat=True)) == [0, 0, 500]

    now = timezone.now() + dt.timedelta(seconds=1)
    figures = selectors.dashboard(days=7, day=now.date(), now=now)
    assert figures["totals"].stripe_usd == Decimal("5.00") and figures["billing_on"]
