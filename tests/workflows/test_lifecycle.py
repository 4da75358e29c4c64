"""One place where a generation moves: the row, its credits, its webhook and its audit entry
commit together, and nothing that a move announces is lost with a process."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from api.models import WebhookDelivery
from api.services import apikey_create
from api.webhooks import deliver_due, generation_webhook_set
from billing.holds import counters_repair
from billing.models import LedgerEntry
from billing.services import account_for
from core.models import AuditAction, AuditEntry
from core.net import client_ip
from generation.models import Generation, State
from tests.api.test_webhooks import Receiver
from tests.factories import GenerationFactory, UserFactory
from tests.support.lifecycle import move
from workflows.generations import generation_cancel
from workflows.lifecycle import Actor, generation_move
from workflows.review import held_approve, held_reject

pytestmark = pytest.mark.django_db

# A public address written as a literal: check_target accepts it without a DNS lookup, and no
# test here lets an on-commit delivery run, so nothing is ever sent to it.
PUBLIC_HOOK = "https://93.184.215.14/hooks"
SCOPES = ["generations:read", "generations:write", "account:read"]


@pytest.fixture
def api(user):
    _, raw = apikey_create(user=user, name="script", scopes=SCOPES)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_transition_alone_is_one_query(django_assert_num_queries):
    generation = GenerationFactory(state=State.SUBMITTING)
    with django_assert_num_queries(1):
        assert Generation.objects.transition(generation.pk, State.IN_QUEUE)


def test_a_routine_move_is_the_update_alone(django_assert_num_queries):
    generation = GenerationFactory(state=State.IN_QUEUE)
    with django_assert_num_queries(1):
        assert move(generation.pk, State.IN_PROGRESS)


def test_a_terminal_move_settles_announces_and_audits_in_one_transaction(user):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    generation_webhook_set(generation=generation, url=PUBLIC_HOOK, events=[])
    worker = Actor(process="worker")
    assert generation_move(
        generation_id=generation.pk,
        to=State.FAILED,
        actor=worker,
        error_code="boom",
        error_message="The renderer fell over.",
    )
    assert WebhookDelivery.objects.get().event == "generation.failed"
    entry = AuditEntry.objects.get(action=AuditAction.GENERATION_FAIL)
    assert entry.actor is None and entry.actor_repr == "worker"
    assert entry.target_id == str(generation.pk) and entry.after == {"state": State.FAILED}
    assert entry.reason == "The renderer fell over."
    # A second try of the same move wins nothing and causes nothing.
    assert not generation_move(generation_id=generation.pk, to=State.FAILED, actor=worker)
    assert WebhookDelivery.objects.count() == 1
    assert AuditEntry.objects.filter(action=AuditAction.GENERATION_FAIL).count() == 1


def test_an_effect_that_fails_takes_the_move_back(user, monkeypatch):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)

    def broken_outbox(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("workflows.lifecycle.webhook_outbox_add", broken_outbox)
    with pytest.raises(RuntimeError):
        move(generation.pk, State.FAILED)
    generation.refresh_from_db()
    assert generation.state == State.IN_PROGRESS
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("prompt", "state", "event"),
    [
        ("a deepfake of a famous actor giving a speech", State.HELD, "generation.held"),
        ("a graphic beheading with gore everywhere", State.BLOCKED, "generation.blocked"),
    ],
)
def test_api_create_held_or_blocked_announces_exactly_once(api, prompt, state, event):
    response = api.post(
        "/api/v1/generations", {"prompt": prompt, "webhook_url": PUBLIC_HOOK}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == state
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == event
    assert delivery.payload["data"]["state"] == state
    assert delivery.status == "pending"


def test_blocked_at_create_releases_and_audits(api, user):
    response = api.post(
        "/api/v1/generations", {"prompt": "a graphic beheading with gore everywhere"}, format="json"
    )
    generation = Generation.objects.get(pk=response.json()["id"])
    assert generation.state == State.BLOCKED
    keys = set(LedgerEntry.objects.filter(generation=generation).values_list("kind", flat=True))
    assert keys == {"hold", "release"}
    entry = AuditEntry.objects.get(action=AuditAction.AUTO_BLOCK)
    assert entry.target_id == str(generation.pk)
    assert entry.before == {"state": State.HELD}


def test_a_delivery_whose_task_never_ran_is_sent_by_the_sweep(user, receiver):
    """The delivery row commits with the move; if the process dies before its on-commit task
    is queued (here: on-commit callbacks never run), the minute sweep still sends it."""
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    generation_webhook_set(generation=generation, url=receiver.url, events=[])
    assert move(generation.pk, State.CANCELED)
    assert receiver.received == []
    pending = WebhookDelivery.objects.get()
    assert pending.status == "pending"
    assert deliver_due(fetch_options=receiver.options) == 1
    pending.refresh_from_db()
    assert pending.status == "delivered"
    assert len(receiver.received) == 1


class FakeRequest:
    def __init__(self, remote_addr, forwarded=None):
        self.META = {"REMOTE_ADDR": remote_addr}
        self.headers = {"x-forwarded-for": forwarded} if forwarded else {}


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),  # no proxy of ours: the header is the client's word
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the client wrote the left entry
        (2, "198.51.100.1, 203.0.113.9", "198.51.100.1"),
        (2, "203.0.113.9", "203.0.113.9"),
        (1, "not an address", None),
        (1, None, "10.0.0.2"),
    ],
)
def test_client_ip_trusts_only_our_own_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(FakeRequest("10.0.0.2", forwarded)) == expected


def test_the_audit_log_records_the_client_behind_one_proxy(settings, api, user):
    settings.TRUSTED_PROXY_COUNT = 1
    generation = GenerationFactory(user=user, state=State.QUEUED)
    response = api.post(
        f"/api/v1/generations/{generation.pk}/cancel",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    assert response.status_code == 200, response.content
    entry = AuditEntry.objects.get(action=AuditAction.GENERATION_CANCEL)
    assert entry.ip == "203.0.113.9"
    assert entry.actor == user


def test_a_spoofed_forwarded_for_is_ignored_without_a_proxy(settings, user):
    settings.TRUSTED_PROXY_COUNT = 0
    generation = GenerationFactory(user=user, state=State.QUEUED)
    client = Client(REMOTE_ADDR="192.0.2.7")
    client.force_login(user)
    response = client.post(f"/g/{generation.pk}/cancel/", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 302
    assert AuditEntry.objects.get(action=AuditAction.GENERATION_CANCEL).ip == "192.0.2.7"


def test_moderator_decisions_name_the_moderator(user):
    moderator = UserFactory(email="mod@example.com", is_staff=True, is_superuser=True)
    generation = GenerationFactory(user=user, state=State.HELD, queued_at=None)
    assert held_approve(generation=generation, moderator=moderator, note="fine")
    entry = AuditEntry.objects.get(action=AuditAction.APPROVE)
    assert entry.actor == moderator
    assert entry.before == {"state": State.HELD} and entry.after == {"state": State.QUEUED}


HELD_PROMPT = "a deepfake of a famous actor giving a speech"


def test_a_held_job_takes_no_slot_until_it_is_approved(api, user):
    """Free allows one job at a time: a prompt held for review must not use it up."""

    held = api.post("/api/v1/generations", {"prompt": HELD_PROMPT}, format="json").json()
    assert held["state"] == State.HELD
    assert account_for(user).in_flight == 0
    allowed = api.post("/api/v1/generations", {"prompt": "a red fox in snow"}, format="json")
    assert allowed.status_code == 201, allowed.json()
    assert account_for(user).in_flight == 1
    assert counters_repair() == 0  # the recount agrees: held rows are not in flight

    moderator = UserFactory(email="mod@example.com", is_staff=True, is_superuser=True)
    assert held_approve(generation=Generation.objects.get(pk=held["id"]), moderator=moderator)
    assert account_for(user).in_flight == 2  # the moderator's decision is not refused
    assert counters_repair() == 0


@pytest.mark.parametrize("end", ["reject", "cancel"])
def test_a_held_job_that_ends_frees_no_slot(api, user, end):

    held = api.post("/api/v1/generations", {"prompt": HELD_PROMPT}, format="json").json()
    other = api.post("/api/v1/generations", {"prompt": "a red fox in snow"}, format="json")
    assert other.status_code == 201, other.json()
    generation = Generation.objects.get(pk=held["id"])
    if end == "reject":
        moderator = UserFactory(email="mod@example.com", is_staff=True, is_superuser=True)
        assert held_reject(generation=generation, moderator=moderator)
    else:
        assert generation_cancel(generation=generation, actor=Actor(user=user)) == "canceled"
    assert account_for(user).in_flight == 1  # the other job's slot is still counted
    assert counters_repair() == 0
    kinds = set(LedgerEntry.objects.filter(generation=generation).values_list("kind", flat=True))
    assert kinds == {"hold", "release"}
