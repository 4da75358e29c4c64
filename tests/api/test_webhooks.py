"""Outgoing webhooks: signed per Standard Webhooks, retried, never to private addresses."""

import http.server
import ipaddress
import ssl
import threading

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from api.models import WebhookDelivery
from api.webhooks import (
    RETRY_DELAYS,
    WebhookUrlRefused,
    check_target,
    generation_webhook_set,
    webhook_deliver,
    webhook_outbox_add,
    webhook_secret_for,
)
from core.safe_fetch import check_ip
from generation.models import Generation, State
from tests.factories import GenerationFactory
from tests.fakefal.certs import get_cert_files
from tests.support.lifecycle import move

pytestmark = pytest.mark.django_db


def loopback_is_public(ip):
    if not ipaddress.ip_address(ip).is_loopback:
        check_ip(ip)


def resolve_to_loopback(host, port):
    return ["127.0.0.1"]


class Receiver:
    """An HTTPS endpoint on loopback that records what it is sent and answers `status`."""

    def __init__(self):
        self.received, self.status = [], 200
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        certs = get_cert_files()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.cert_path, certs.key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hooks"
        # Loopback stands in for a public receiver: only this test's ip_check lets it through.
        # TLS is real: the certificate is verified against 127.0.0.1.
        self.options = {
            "ip_check": loopback_is_public,
            "allowed_ports": {self.port},
            "verify": certs.cert_path,
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def deliver(delivery, receiver):
    return webhook_deliver(delivery_id=delivery.pk, fetch_options=receiver.options)


def test_succeeded_event_is_signed_and_verifiable(user, receiver):
    generation = GenerationFactory(user=user, state=State.SUCCEEDED, output="outputs/a.mp4")
    generation_webhook_set(generation=generation, url=receiver.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.SUCCEEDED)

    assert deliver(delivery, receiver)

    headers, body = receiver.received[0]
    headers = {name.lower(): value for name, value in headers.items()}
    payload = Webhook(webhook_secret_for(user)).verify(body, headers)
    assert payload["type"] == "generation.succeeded"
    assert payload["data"]["id"] == str(generation.pk)
    assert headers["webhook-id"] == delivery.message_id
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 1


def test_same_event_twice_is_delivered_once(user, receiver):
    generation = GenerationFactory(user=user, state=State.FAILED, error_code="x", error_message="y")
    generation_webhook_set(generation=generation, url=receiver.url, events=[])
    first = webhook_outbox_add(generation_id=generation.pk, state=State.FAILED)
    assert webhook_outbox_add(generation_id=generation.pk, state=State.FAILED) is None
    assert deliver(first, receiver)
    assert not deliver(first, receiver)
    assert len(receiver.received) == 1


def test_event_filter_is_respected(user, receiver):
    generation = GenerationFactory(user=user, state=State.CANCELED)
    generation_webhook_set(generation=generation, url=receiver.url, events=["generation.succeeded"])
    assert webhook_outbox_add(generation_id=generation.pk, state=State.CANCELED) is None


def test_failures_back_off_then_give_up(user, receiver):
    receiver.status = 503
    generation = GenerationFactory(user=user, state=State.FAILED, error_code="x")
    generation_webhook_set(generation=generation, url=receiver.url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.FAILED)
    for attempt, delay in enumerate(RETRY_DELAYS, start=1):
        before = timezone.now()
        assert not deliver(delivery, receiver)
        delivery.refresh_from_db()
        assert delivery.attempts == attempt and delivery.last_status_code == 503
        assert (delivery.next_attempt_at - before).total_seconds() >= delay - 1
    assert not deliver(delivery, receiver)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_attempt_at is None


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://user:pw@example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest",
    ],
)
def test_private_or_plain_targets_are_refused(url):
    with pytest.raises(WebhookUrlRefused):
        check_target(url)


def test_target_turning_private_later_is_not_called(user, receiver):
    generation = GenerationFactory(user=user, state=State.SUCCEEDED, output="outputs/a.mp4")
    url = f"https://hooks.example:{receiver.port}/hooks"
    generation_webhook_set(generation=generation, url=url, events=[])
    delivery = webhook_outbox_add(generation_id=generation.pk, state=State.SUCCEEDED)
    # DNS now answers loopback (rebinding), and loopback is not public: nothing may be sent.
    options = {"resolver": resolve_to_loopback, "allowed_ports": {receiver.port}}
    assert not webhook_deliver(delivery_id=delivery.pk, fetch_options=options)
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.last_error and delivery.last_status_code is None


def test_api_create_refuses_a_private_webhook_url(alice_api):
    response = alice_api.post(
        "/api/v1/generations",
        {
            "prompt": "x",
            "webhook_url": "https://192.168.1.10/hook",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "webhook_url" in response.json()["errors"]
    assert not Generation.objects.exists()


def test_a_transition_queues_the_delivery_once(user, django_capture_on_commit_callbacks):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    generation_webhook_set(generation=generation, url="https://hooks.example/x", events=[])
    with django_capture_on_commit_callbacks(execute=True):
        assert move(generation.pk, State.FAILED, error_code="boom")
        assert not move(generation.pk, State.FAILED)
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == "generation.failed"
    assert delivery.payload["data"]["error"]["code"] == "boom"
