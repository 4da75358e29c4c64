"""/metrics after real actions: a render through the real fal-client and the fake fal, a submit
fal refuses, a credit purchase, webhook deliveries to a loopback receiver. Each series is read
before and after, so other tests in the same process do not matter."""

import pytest
from django.urls import reverse

from api.webhooks import generation_webhook_set, webhook_deliver, webhook_outbox_add
from billing import services
from generation.models import Generation, State
from tests.api.test_webhooks import receiver  # noqa: F401 (the fixture)
from tests.factories import GenerationFactory

from .conftest import make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db

TOKEN = {"Authorization": "Bearer metrics-token"}
TEXT = "fal-ai/pika/v2.2/text-to-video"
FORM = {
    "endpoint": TEXT,
    "prompt": "a red fox in snow",
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
}


class Scrape:
    """Every series of /metrics, read with the token by an anonymous client."""

    def __init__(self, client):
        self.client = client

    def __call__(self) -> dict[str, float]:
        answer = self.client.get("/metrics", headers=TOKEN)
        assert answer.status_code == 200
        figures = {}
        for line in answer.content.decode().splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                figures[series] = float(value)
        return figures


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = "metrics-token"
    return Scrape(client)


def grew(before: dict, after: dict, series: str) -> float:
    return after.get(series, 0) - before.get(series, 0)


def test_a_render_counts_its_moves_stages_provider_calls_and_ledger(
    fake_fal, alice_client, user, scrape, django_capture_on_commit_callbacks
):
    before = scrape()
    account = services.account_for(user)
    services.credits_purchase(account=account, credits=500, key="test:metrics", reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        assert alice_client.post(reverse("generate"), FORM).status_code == 302
    track_until_terminal(django_capture_on_commit_callbacks)
    generation = Generation.objects.get()
    assert generation.state == State.SUCCEEDED, generation.error_message
    after = scrape()

    for state in ("submitting", "in_queue", "finalizing", "succeeded"):
        assert grew(before, after, f'promptreel_generation_moves_total{{state="{state}"}}') == 1
    for stage in ("submit", "run", "finalize", "total"):
        series = f'promptreel_generation_stage_seconds_count{{stage="{stage}"}}'
        assert grew(before, after, series) == 1, stage
    total = (generation.finished_at - generation.created_at).total_seconds()
    assert grew(
        before, after, 'promptreel_generation_stage_seconds_sum{stage="total"}'
    ) == pytest.approx(total)
    ok = f'backend="fal",call="{{}}",endpoint="{TEXT}",outcome="ok"'
    assert grew(before, after, "promptreel_provider_calls_total{" + ok.format("submit") + "}") == 1
    assert grew(before, after, "promptreel_provider_calls_total{" + ok.format("result") + "}") >= 1
    assert grew(before, after, 'promptreel_ledger_entries_total{kind="purchase"}') == 1
    assert grew(before, after, 'promptreel_ledger_credits_total{kind="purchase"}') == 500
    assert grew(before, after, 'promptreel_ledger_entries_total{kind="hold"}') == 1
    assert grew(before, after, 'promptreel_ledger_credits_total{kind="hold"}') == (
        generation.credit_cost
    )
    assert grew(before, after, 'promptreel_ledger_entries_total{kind="capture"}') == 1


def test_a_refused_submit_counts_its_error_code(
    fake_fal, user, scrape, django_capture_on_commit_callbacks
):
    fake_fal.fail_next_submits(
        1,
        status=422,
        mode="raw",
        body={"detail": [{"loc": ["body", "duration"], "msg": "must be 5 or 10", "type": "enum"}]},
    )
    before = scrape()
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    after = scrape()
    assert generation.state == State.FAILED
    refused = f'backend="fal",call="submit",endpoint="{TEXT}",outcome="provider_validation"'
    assert grew(before, after, "promptreel_provider_calls_total{" + refused + "}") == 1
    assert grew(before, after, 'promptreel_generation_moves_total{state="failed"}') == 1
    assert grew(before, after, 'promptreel_generation_stage_seconds_count{stage="total"}') == 0


def test_webhook_attempts_by_outcome(user, scrape, receiver):  # noqa: F811
    generation = GenerationFactory(user=user, state=State.FAILED, error_code="x")
    generation_webhook_set(generation=generation, url=receiver.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.FAILED)
    before = scrape()
    receiver.status = 503
    assert not webhook_deliver(delivery_id=delivery.pk, fetch_options=receiver.options)
    receiver.status = 200
    delivery.refresh_from_db()
    type(delivery).objects.filter(pk=delivery.pk).update(next_attempt_at=None)
    assert webhook_deliver(delivery_id=delivery.pk, fetch_options=receiver.options)
    after = scrape()
    assert grew(before, after, 'promptreel_webhook_attempts_total{outcome="retry"}') == 1
    assert grew(before, after, 'promptreel_webhook_attempts_total{outcome="delivered"}') == 1
    assert grew(before, after, 'promptreel_webhook_attempts_total{outcome="gave_up"}') == 0
