"""Webhooks a developer can test (issue 19 item 5): loopback receivers in DEBUG only, a test
event, redelivery (API and site), and the payload as the API returns the generation."""

import http.server
import json
import threading

import pytest
from django.urls import reverse
from standardwebhooks import Webhook

from api.models import WebhookDelivery
from api.webhooks import (
    WebhookUrlRefused,
    check_target,
    generation_webhook_set,
    webhook_deliver,
    webhook_outbox_add,
    webhook_secret_for,
)
from generation.models import State
from tests.api.test_webhooks import Receiver
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/generations"


class PlainReceiver:
    """An http:// receiver on loopback, as a developer runs one on a laptop."""

    def __init__(self):
        self.received, self.status = [], 204
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def verified(self, user, index=-1) -> dict:
        headers, body = self.received[index]
        return Webhook(webhook_secret_for(user)).verify(body, headers)


@pytest.fixture
def plain():
    receiver = PlainReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def laptop(settings):
    """Development mode with loopback receivers allowed."""
    settings.DEBUG = True
    settings.WEBHOOK_ALLOW_LOOPBACK = True


def succeeded(user):
    return GenerationFactory(
        user=user,
        succeeded=True,
    )


@pytest.mark.parametrize("debug", [False, True])
def test_loopback_targets_need_debug_and_the_setting_both(settings, debug, plain):
    settings.DEBUG, settings.WEBHOOK_ALLOW_LOOPBACK = debug, not debug
    with pytest.raises(WebhookUrlRefused, match="WEBHOOK_ALLOW_LOOPBACK"):
        check_target(plain.url)


def test_production_never_sends_to_loopback_even_with_the_setting(settings, user, plain):
    settings.DEBUG, settings.WEBHOOK_ALLOW_LOOPBACK = False, True
    generation = GenerationFactory(user=user, state=State.CANCELED)
    generation_webhook_set(generation=generation, url=plain.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.CANCELED)
    assert not webhook_deliver(delivery_id=delivery.pk)
    assert plain.received == []


def test_in_debug_a_laptop_receives_over_http(laptop, alice_api, user, plain, monkeypatch):
    """The README's route: create with an http://127.0.0.1 webhook, cancel, receive."""
    monkeypatch.setattr("workflows.generations.enqueue_submit", lambda generation_id: None)
    created = alice_api.post(URL, {"prompt": "a fox", "webhook_url": plain.url}, format="json")
    assert created.status_code == 201, created.json()
    alice_api.post(f"{URL}/{created.json()['id']}/cancel")
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliver(delivery_id=delivery.pk)  # as the on-commit task does
    event = plain.verified(user)
    assert event["type"] == "generation.canceled"
    document = alice_api.get(f"{URL}/{created.json()['id']}").json()
    assert event["data"] == document  # the generation as the API returns it


def test_in_debug_a_laptop_receives_over_https(laptop, user):
    receiver = Receiver()  # real TLS on loopback, its own certificate
    try:
        generation = succeeded(user)
        generation_webhook_set(generation=generation, url=receiver.url, events=[])
        delivery = webhook_outbox_add(generation_id=generation.pk, state=State.SUCCEEDED)
        # Only the certificate is the test's; the address and port pass by the DEBUG policy.
        assert webhook_deliver(
            delivery_id=delivery.pk, fetch_options={"verify": receiver.options["verify"]}
        )
        assert len(receiver.received) == 1
    finally:
        receiver.close()


def test_the_payload_carries_the_output_with_fresh_links(laptop, user, plain, settings):
    settings.PUBLIC_BASE_URL = "https://promptreel.test"
    generation = succeeded(user)
    generation_webhook_set(generation=generation, url=plain.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.SUCCEEDED)
    stored = delivery.payload["data"]["output"]
    assert stored["video_url"].startswith("https://promptreel.test/")
    assert webhook_deliver(delivery_id=delivery.pk)
    sent = plain.verified(user)["data"]
    assert sent["state"] == "succeeded" and sent["id"] == str(generation.pk)
    assert sent["output"]["expires_at"] and sent["output"]["width"] == 1280
    assert set(sent) >= {"timings", "price_credits", "seed", "error", "aspect_ratio"}


def test_test_event_through_the_api(laptop, alice_api, user, plain):
    generation = succeeded(user)
    answer = alice_api.post("/api/v1/webhooks/test", {"url": plain.url}, format="json")
    assert answer.status_code == 200
    result = answer.json()
    assert result["delivered"] is True and result["status_code"] == 204
    event = plain.verified(user)
    assert event["type"] == "webhook.test" and event["data"]["id"] == str(generation.pk)
    assert plain.received[-1][0]["webhook-id"] == result["message_id"]
    assert not WebhookDelivery.objects.exists()  # nothing stored, nothing retried
    plain.status = 500
    failed = alice_api.post("/api/v1/webhooks/test", {"url": plain.url}, format="json").json()
    assert failed["delivered"] is False and failed["error"] == "HTTP 500"


def test_test_event_refuses_what_a_delivery_refuses(alice_api):
    answer = alice_api.post(
        "/api/v1/webhooks/test", {"url": "https://10.0.0.8/hook"}, format="json"
    )
    assert answer.status_code == 400 and "url" in answer.json()["errors"]


def test_redeliver_through_the_api(
    laptop, alice_api, bob_api, user, plain, django_capture_on_commit_callbacks
):
    generation = GenerationFactory(user=user, state=State.FAILED, error_code="x")
    generation_webhook_set(generation=generation, url=plain.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.FAILED)
    assert webhook_deliver(delivery_id=delivery.pk)
    path = f"{URL}/{generation.pk}/webhooks/{delivery.message_id}/redeliver"
    assert bob_api.post(path).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_api.post(path)
    assert answer.status_code == 202 and answer.json()["message_id"] == delivery.message_id
    assert len(plain.received) == 2  # sent again by the task the redelivery queued
    assert plain.received[0][0]["webhook-id"] == plain.received[1][0]["webhook-id"]
    log = alice_api.get(f"{URL}/{generation.pk}/webhooks").json()
    assert log[0]["status"] == "delivered" and log[0]["attempts"] == 2


def test_the_keys_page_tests_and_redelivers(
    laptop, alice_client, user, plain, django_capture_on_commit_callbacks
):
    page = alice_client.get(reverse("api_keys"))
    assert b"Send test event" in page.content and b"No webhook deliveries yet" in page.content
    answer = alice_client.post(reverse("api_webhook_test_site"), {"url": plain.url}, follow=True)
    assert b"delivered: HTTP 204" in answer.content
    assert plain.verified(user)["type"] == "webhook.test"

    generation = GenerationFactory(user=user, state=State.CANCELED, prompt="the red fox")
    generation_webhook_set(generation=generation, url=plain.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.CANCELED)
    page = alice_client.get(reverse("api_keys"))
    assert delivery.message_id.encode() in page.content and b"Redeliver" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("api_webhook_redeliver_site", args=[delivery.pk]))
    assert json.loads(plain.received[-1][1])["type"] == "generation.canceled"


def test_the_keys_page_explains_loopback_outside_debug(alice_client, settings):
    settings.DEBUG = False
    page = alice_client.get(reverse("api_keys"))
    assert b"WEBHOOK_ALLOW_LOOPBACK=1" in page.content


def test_someone_elses_delivery_cannot_be_redelivered_from_the_site(bob_client, user):
    generation = GenerationFactory(user=user, state=State.CANCELED)
    generation_webhook_set(generation=generation, url="https://hooks.example/x", events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.CANCELED)
    answer = bob_client.post(reverse("api_webhook_redeliver_site", args=[delivery.pk]))
    assert answer.status_code == 404
