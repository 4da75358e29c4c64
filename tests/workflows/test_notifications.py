"""The creator's email when a clip is ready or failed: an effect of the move, sent after it
commits, once per clip, as the owner's setting says (workflows.notifications)."""

import pytest
from django.core import mail
from django.urls import reverse

from api.services import apikey_create
from generation.models import Generation, State
from tests.factories import GenerationFactory
from tests.generation.test_end_to_end import drive_until_terminal
from tests.support.lifecycle import move
from workflows import notifications, tasks

pytestmark = pytest.mark.django_db

FORM = {
    "endpoint": "fal-ai/pika/v2.2/text-to-video",
    "prompt": "a red fox in snow",
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
}


def test_a_clip_made_on_the_site_is_announced_once_when_ready(
    alice_client, user, settings, django_capture_on_commit_callbacks
):
    settings.TRACK_POLL_MIN_SECONDS = 0
    settings.PUBLIC_BASE_URL = "https://promptreel.example"
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("generate"), FORM)
    drive_until_terminal(django_capture_on_commit_callbacks)
    generation = Generation.objects.get()
    assert generation.state == State.SUCCEEDED, generation.error_message
    (email,) = mail.outbox
    assert email.to == [user.email]
    assert email.subject == "Promptreel: your video is ready"
    assert "a red fox in snow" in email.body
    assert f"https://promptreel.example/g/{generation.pk}/" in email.body
    # The task again (a django-q retry), or the move tried again: nothing more is sent.
    assert tasks.notify_outcome(str(generation.pk)) is False
    assert not move(generation.pk, State.SUCCEEDED)
    assert len(mail.outbox) == 1
    generation.refresh_from_db()
    assert generation.owner_notified_at is not None


def test_a_failed_clip_is_announced_with_its_reason(user, django_capture_on_commit_callbacks):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS, prompt="a paper boat")
    with django_capture_on_commit_callbacks(execute=True):
        assert move(generation.pk, State.FAILED, error_message="The provider timed out.")
    (email,) = mail.outbox
    assert email.subject == "Promptreel: your video could not be made"
    assert "The provider timed out." in email.body and "Nothing was charged" in email.body


def test_nothing_is_sent_before_the_move_commits(user, django_capture_on_commit_callbacks):
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        move(generation.pk, State.FAILED, error_message="x")
    assert mail.outbox == [] and len(callbacks) >= 1


def test_the_setting_turns_it_off(alice_client, user, django_capture_on_commit_callbacks):
    page = alice_client.get(reverse("account_settings"))
    assert page.status_code == 200 and 'name="notify_by_email"' in page.content.decode()
    assert "checked" in page.content.decode()  # on by default
    response = alice_client.post(reverse("account_settings"), {})  # the box unticked
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.notify_by_email is False
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        move(generation.pk, State.FAILED, error_message="x")
    assert mail.outbox == []
    alice_client.post(reverse("account_settings"), {"notify_by_email": "on"})
    user.refresh_from_db()
    assert user.notify_by_email is True


def test_api_clips_and_approved_holds_are_not_announced_by_this_email(
    user, django_capture_on_commit_callbacks
):
    key, _ = apikey_create(user=user, name="ci", scopes=["generations:write"])
    from_api = GenerationFactory(user=user, state=State.IN_PROGRESS, api_key=key)
    held = GenerationFactory(user=user, state=State.HELD, output="outputs/x.mp4")
    with django_capture_on_commit_callbacks(execute=True):
        move(from_api.pk, State.FAILED, error_message="x")
        move(held.pk, State.SUCCEEDED, sources=[State.HELD])
    assert mail.outbox == []
    assert notifications.generation_outcome_notify(generation_id=from_api.pk) is False
