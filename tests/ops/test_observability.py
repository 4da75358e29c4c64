"""/metrics behind its token, request ids on responses and log lines, JSON logs, Sentry."""

import json
import logging
import subprocess
import sys

import pytest

from api.models import WebhookDelivery
from core.observability import ContextFilter, JsonFormatter, log_context
from generation.models import State
from tests.factories import GenerationFactory
from tests.support.processes import ROOT, process_env

pytestmark = pytest.mark.django_db

TOKEN = {"Authorization": "Bearer metrics-token"}


def figure(body: str, line_start: str) -> float:
    (line,) = [line for line in body.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


def test_metrics_refuse_without_the_token(client, settings):
    settings.METRICS_TOKEN = "metrics-token"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "metrics-token"}):
        answer = client.get("/metrics", headers=headers)
        assert answer.status_code == 401
        assert b"promptreel_" not in answer.content
    assert client.get("/metrics", headers=TOKEN).status_code == 200


def test_metrics_are_off_without_a_token_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_metrics_count_generations_by_state_and_requests(client, settings, user):
    settings.METRICS_TOKEN = "metrics-token"
    for state in (State.QUEUED, State.QUEUED, State.FAILED):
        GenerationFactory(user=user, state=state)
    before = client.get("/metrics", headers=TOKEN).content.decode()
    client.get("/healthz")
    body = client.get("/metrics", headers=TOKEN).content.decode()

    assert figure(body, 'promptreel_generations{state="queued"}') == 2
    assert figure(body, 'promptreel_generations{state="failed"}') == 1
    assert figure(body, 'promptreel_generations{state="succeeded"}') == 0
    pending = f'promptreel_webhook_deliveries{{status="{WebhookDelivery.Status.PENDING}"}}'
    assert figure(body, pending) == 0
    assert "promptreel_tasks_queued " in body
    # The /healthz answer and the first scrape were counted in between.
    counted = 'promptreel_http_requests_total{method="GET",status="200"}'
    assert figure(body, counted) == figure(before, counted) + 2


def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first["X-Request-ID"]) == 32 and first["X-Request-ID"] != second["X-Request-ID"]
    # The proxy's id is kept when it is a sane token, replaced when it is not.
    assert client.get("/healthz", headers={"X-Request-ID": "edge-42"})["X-Request-ID"] == "edge-42"
    assert client.get("/healthz", headers={"X-Request-ID": "a b\n"})["X-Request-ID"] != "a b\n"


def json_line(message: str, **context) -> dict:
    record = logging.LogRecord("promptreel.test", logging.INFO, __file__, 1, message, (), None)
    with log_context(**context):
        ContextFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def test_json_log_lines_carry_request_and_generation_ids():
    line = json_line("copied %s", request_id="r-1", generation_id="g-1")
    assert line["message"] == "copied %s"
    assert (line["request_id"], line["generation_id"], line["level"]) == ("r-1", "g-1", "INFO")
    assert line["time"].endswith("Z")
    assert "request_id" not in json_line("outside any request")


@pytest.mark.slow
def test_log_format_json_and_sentry_from_the_environment(tmp_path):
    env = process_env(LOG_FORMAT="json", SENTRY_DSN="https://public@127.0.0.1:9/1")
    env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    env.pop("DATABASE_URL", None)
    script = (
        "import logging, sentry_sdk; logging.getLogger('probe').warning('hello'); "
        "print(sentry_sdk.get_client().is_active())"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (line["logger"], line["message"], line["level"]) == ("probe", "hello", "WARNING")
