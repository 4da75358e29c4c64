"""Waiting without polling (issue 19 item 4): Prefer: wait, the event stream, ETags.

Time is stepped, not spent: the waits' clock and sleep are restapi.waiting's attributes, and
"sleeping" here is where the world moves on (the owner cancels, as another request would).
"""

import pytest

from api import ratelimit
from generation.models import Generation, State
from restapi import waiting
from tests.factories import GenerationFactory
from workflows.generations import generation_cancel
from workflows.lifecycle import Actor

pytestmark = pytest.mark.django_db

URL = "/api/v1/generations"


class SteppedTime:
    """A clock that moves only when slept on; `on_sleep` runs at the n-th sleep."""

    def __init__(self, monkeypatch, on_sleep=None, at: int = 1):
        self.now, self.sleeps, self.on_sleep, self.at = 1000.0, 0, on_sleep, at
        monkeypatch.setattr(waiting, "clock", lambda: self.now)
        monkeypatch.setattr(waiting, "sleep", self.sleep)

    def sleep(self, seconds):
        assert 0 <= seconds <= waiting.MAX_DELAY
        self.now += seconds
        self.sleeps += 1
        if self.sleeps == self.at and self.on_sleep:
            self.on_sleep()


def cancel_later(generation):
    return lambda: generation_cancel(
        generation=Generation.objects.get(pk=generation.pk), actor=Actor(process="worker")
    )


def test_prefer_wait_answers_when_the_generation_ends(alice_api, user, monkeypatch):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    time = SteppedTime(monkeypatch, cancel_later(generation), at=3)
    answer = alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=30")
    assert answer.status_code == 200
    assert answer.json()["state"] == "canceled"
    assert answer["Preference-Applied"] == "wait=30"
    assert time.sleeps == 3 and time.now - 1000 < 2  # answered at the change, not at 30 s


def test_prefer_wait_gives_up_after_the_seconds_asked_and_caps_them(
    alice_api, user, monkeypatch, settings
):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    time = SteppedTime(monkeypatch)
    answer = alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="respond-async, wait=7")
    assert answer.json()["state"] == "queued" and answer["Preference-Applied"] == "wait=7"
    assert time.now - 1000 == pytest.approx(7)
    time.now = 1000.0
    answer = alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=3600")
    assert answer["Preference-Applied"] == f"wait={settings.API_MAX_WAIT_SECONDS}" == "wait=60"
    assert time.now - 1000 == pytest.approx(60)


def test_no_wait_without_the_header_or_a_free_slot(
    alice_api, alice_key, user, monkeypatch, settings
):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    time = SteppedTime(monkeypatch)
    assert "Preference-Applied" not in alice_api.get(f"{URL}/{generation.pk}")
    settings.API_MAX_WAITS_PER_KEY = 1
    held = ratelimit.slot_take(f"wait:key:{alice_key[0].pk}", limit=1)  # another request waits
    answer = alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=30")
    assert answer.status_code == 200 and "Preference-Applied" not in answer
    assert time.sleeps == 0
    stream = alice_api.get(f"{URL}/{generation.pk}/events")
    assert stream.status_code == 429 and stream["Retry-After"] == "5"
    ratelimit.slot_free(f"wait:key:{alice_key[0].pk}", held)
    assert alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=1")["Preference-Applied"]


def test_waits_give_their_slot_back(alice_api, alice_key, user, monkeypatch, settings):
    settings.API_MAX_WAITS_PER_KEY = 1
    generation = GenerationFactory(user=user, state=State.QUEUED)
    SteppedTime(monkeypatch)
    for _ in range(3):  # each would find the slot taken if the one before kept it
        answer = alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=2")
        assert answer["Preference-Applied"] == "wait=2"
    list(alice_api.get(f"{URL}/{generation.pk}/events").streaming_content)
    assert alice_api.get(f"{URL}/{generation.pk}", HTTP_PREFER="wait=2")["Preference-Applied"]


def test_create_with_prefer_wait(alice_api, monkeypatch):
    made = {}

    def cancel():
        generation_cancel(generation=Generation.objects.get(), actor=Actor(process="worker"))
        made["canceled"] = True

    monkeypatch.setattr("workflows.generations.enqueue_submit", lambda generation_id: None)
    SteppedTime(monkeypatch, cancel)
    answer = alice_api.post(URL, {"prompt": "a fox"}, format="json", HTTP_PREFER="wait=10")
    assert answer.status_code == 201 and made
    assert answer.json()["state"] == "canceled" and answer["Preference-Applied"] == "wait=10"
    assert answer["Location"].endswith(answer.json()["id"])


def test_event_stream_sends_each_change_then_ends(alice_api, user, monkeypatch):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    SteppedTime(monkeypatch, cancel_later(generation), at=2)
    answer = alice_api.get(f"{URL}/{generation.pk}/events", HTTP_ACCEPT="text/event-stream")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/event-stream"
    assert answer["RateLimit"]
    text = b"".join(answer.streaming_content).decode()
    events = [block for block in text.split("\n\n") if block]
    assert [next(x for x in e.split("\n") if x.startswith("event:")) for e in events] == [
        "event: generation",
        "event: generation",
        "event: end",
    ]
    assert '"state": "queued"' in events[0] and '"state": "canceled"' in events[1]
    assert events[0].startswith("id: 1\n") and events[1].startswith("id: 2\n")


def test_event_stream_times_out_for_the_client_to_reconnect(alice_api, user, monkeypatch):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    SteppedTime(monkeypatch)
    answer = alice_api.get(f"{URL}/{generation.pk}/events")
    text = b"".join(answer.streaming_content).decode()
    assert text.count("event: generation") == 1
    assert ": still waiting" in text  # a comment every 15 s keeps proxies from closing it
    assert text.rstrip().split("\n\n")[-1].startswith("event: timeout")


def test_event_stream_of_another_users_generation_is_404(bob_api, user):
    generation = GenerationFactory(user=user)
    answer = bob_api.get(f"{URL}/{generation.pk}/events", HTTP_ACCEPT="text/event-stream")
    assert answer.status_code == 404


def test_etag_and_if_none_match(alice_api, user):
    generation = GenerationFactory(user=user, state=State.QUEUED)
    first = alice_api.get(f"{URL}/{generation.pk}")
    tag = first["ETag"]
    assert tag.startswith('W/"')
    again = alice_api.get(f"{URL}/{generation.pk}", HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304 and again["ETag"] == tag and not again.content
    assert again["RateLimit"]
    assert (
        alice_api.get(f"{URL}/{generation.pk}", HTTP_IF_NONE_MATCH='W/"other.0"').status_code == 200
    )
    Generation.objects.filter(pk=generation.pk).update(queue_position=4)
    changed = alice_api.get(f"{URL}/{generation.pk}", HTTP_IF_NONE_MATCH=tag)
    assert changed.status_code == 200 and changed["ETag"] != tag


def test_a_copy_whose_links_expire_soon_is_not_not_modified(alice_api, user, settings):
    generation = GenerationFactory(
        user=user,
        succeeded=True,
    )
    fresh = alice_api.get(f"{URL}/{generation.pk}")
    assert (
        alice_api.get(f"{URL}/{generation.pk}", HTTP_IF_NONE_MATCH=fresh["ETag"]).status_code == 304
    )
    settings.SIGNED_URL_TTL = waiting.FRESH_ENOUGH_SECONDS  # links that expire at once
    short = alice_api.get(f"{URL}/{generation.pk}")
    assert (
        alice_api.get(f"{URL}/{generation.pk}", HTTP_IF_NONE_MATCH=short["ETag"]).status_code == 200
    )
