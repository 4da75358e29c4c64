"""The fal backend driven through the real fal-client against the fake fal on loopback."""

import json
import os
import time

import pytest
from django.core.cache import cache, caches
from django.test import Client

from billing.models import LedgerEntry
from generation.backends import fal as fal_backend
from generation.models import Generation, State
from tests.factories import GenerationFactory
from tests.fakefal import FakeFal, configure_fal_client_env
from tests.media.conftest import fetch_options, moto_endpoint, s3, storage  # noqa: F401 - shared fixtures
from workflows import fal_webhooks
from workflows.tracking import track_once

PUBLIC_BASE_URL = "https://promptreel.test"


@pytest.fixture(scope="session")
def fake_fal_server():
    with FakeFal(queue_time=0.05, inference_time=0.1) as fake:
        yield fake


class Webhooks:
    """Collects what the fake would POST to us, so the test delivers it in its own thread.

    The test database is a transaction of the test's thread: a webhook posted from the fake's
    delivery pool would not see its rows, so deliveries wait here until `deliver()`.
    """

    def __init__(self):
        self.pending: list[tuple[str, dict, bytes]] = []
        self.client = Client()
        self.responses = []

    def sender(self, url, headers, body) -> int:
        self.pending.append((url, headers, body))
        return 200

    def post(self, headers: dict, body: bytes, url: str = "/webhooks/fal/"):
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        extra.pop("HTTP_CONTENT_TYPE", None)
        # The path and query fal was given (the query names the submit attempt).
        target = url.removeprefix(PUBLIC_BASE_URL)
        response = self.client.post(target, data=body, content_type="application/json", **extra)
        self.responses.append(response)
        return response

    def deliver(self, capture) -> list:
        """POST every pending webhook to /webhooks/fal/, running on-commit tasks inline."""
        delivered = []
        while self.pending:
            url, headers, body = self.pending.pop(0)
            assert url.startswith(f"{PUBLIC_BASE_URL}/webhooks/fal/?attempt=")
            with capture(execute=True):
                delivered.append(self.post(headers, body, url))
        return delivered


@pytest.fixture
def fake_fal(fake_fal_server, settings, monkeypatch):
    fake = fake_fal_server
    fake.reset()
    webhooks = Webhooks()
    for knob, value in {
        "queue_time": 0.05,
        "inference_time": 0.1,
        "drop_webhooks": False,
        "webhook_duplicates": 1,
        "webhook_delay_s": 0,
        "webhook_sign_with_unpublished_key": False,
        "webhook_timestamp_offset_s": 0,
        "result_retention_s": 3600,
        "webhook_sender": webhooks.sender,
        # fal's runner downloads the input URLs it is given: so does the fake, so a test
        # proves fal could read them (a URL it cannot read fails the job with fal's 422).
        "fetch_inputs": True,
    }.items():
        monkeypatch.setattr(fake, knob, value)
    configure_fal_client_env(fake, monkeypatch=monkeypatch)
    fal_backend._client.cache_clear()
    settings.FAL_KEY = "fake-key-id:fake-key-secret"
    settings.VIDEO_BACKEND = "fal"
    settings.FAL_ALLOW_PRIVATE_RESULT_HOSTS = True
    settings.FAL_WEBHOOK_JWKS_URL = fake.jwks_url
    settings.PUBLIC_BASE_URL = ""
    settings.TRACK_POLL_MIN_SECONDS = 0
    fake.webhooks = webhooks
    # On Redis the cache is shared by the xdist workers (each with its own fake and keys) and
    # outlives a test; tests/conftest.py's KEY_PREFIX change comes after the cache object was
    # built, so set the prefix on the object, and start with no keys and no refresh guard.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    monkeypatch.setattr(caches["default"], "key_prefix", f"test-fal-{worker}")
    cache.delete_many([fal_webhooks.JWKS_CACHE_KEY, fal_webhooks.JWKS_REFRESH_GUARD])
    fal_webhooks.jwks_memo_clear()
    yield fake
    fal_backend._client.cache_clear()
    assert not fake.errors, fake.errors


@pytest.fixture
def with_webhooks(settings):
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL


def ledger_kinds(generation) -> list[str]:
    """The kinds of the ledger entries of a generation, sorted (hold, capture, release...)."""
    return sorted(LedgerEntry.objects.filter(generation=generation).values_list("kind", flat=True))


def make_generation(user, **fields) -> Generation:
    fields.setdefault("backend", "fal")
    return GenerationFactory(user=user, **fields)


def run_submit(generation, capture) -> Generation:
    from workflows import pipeline

    with capture(execute=True):
        pipeline.generation_submit(generation_id=generation.pk)
    generation.refresh_from_db()
    return generation


def track_until_terminal(capture, *, seconds: float = 90.0) -> None:
    """What `manage.py track` does, pass by pass, with on-commit tasks run inline, until every
    row has ended. Bounded by time, not by passes: on a loaded CI box a pass takes longer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with capture(execute=True):
            track_once()
        if not Generation.objects.exclude(
            state__in=[State.SUCCEEDED, State.FAILED, State.CANCELED, State.BLOCKED]
        ).exists():
            return
        time.sleep(0.02)
    states = list(Generation.objects.values_list("state", "next_check_at", "polls"))
    raise AssertionError(f"the tracker did not finish the generations: {states}")


def webhook_body(delivery_body: bytes) -> dict:
    return json.loads(delivery_body)
