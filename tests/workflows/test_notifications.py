"""The creator's email when a clip is ready or failed: an effect of the move, sent after it
commits, once per clip and one email per owner for the clips the sender finds, as the owner's
setting says (workflows.notifications)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from api.services import apikey_create
from generation.models import Generation, State
from tests.factories import GenerationFactory
from tests.generation.test_end_to_end import drive_until_terminal
from tests.support.forms import FORM
from tests.support.lifecycle import move
from workflows import notifications, tasks

pytestmark = pytest.mark.django_db


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
    # The sender again (a django-q retry, the minute schedule), or the move tried again:
    # nothing more is sent.
    assert tasks.notify_outcomes() == 0
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
    assert notifications.outcomes_notify() == 0
    held.refresh_from_db()
    assert held.owner_notified_at is not None  # the decision email announces it


def test_clips_that_end_before_the_sender_runs_go_out_as_one_email_per_owner(
    user, other_user, settings, django_capture_on_commit_callbacks
):
    settings.PUBLIC_BASE_URL = "https://promptreel.example"
    ready = GenerationFactory(
        user=user, state=State.FINALIZING, prompt="a red kite", output="o/a.mp4"
    )
    failed = GenerationFactory(user=user, state=State.IN_PROGRESS, prompt="a blue whale")
    theirs = GenerationFactory(user=other_user, state=State.IN_PROGRESS, prompt="a green frog")
    # The sender is busy elsewhere: every commit's kick finds the gate shut.
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        move(ready.pk, State.SUCCEEDED, output="o/a.mp4")
        move(failed.pk, State.FAILED, error_message="The provider timed out.")
        move(theirs.pk, State.FAILED, error_message="x")
    assert mail.outbox == []
    assert notifications.outcomes_notify() == 2
    by_owner = {email.to[0]: email for email in mail.outbox}
    digest = by_owner[user.email]
    assert digest.subject == "Promptreel: 1 video is ready, 1 could not be made"
    assert "2 of your videos are done" in digest.body
    assert "Ready: “a red kite”" in digest.body
    assert f"https://promptreel.example/g/{ready.pk}/" in digest.body
    assert "Could not be made (The provider timed out.): “a blue whale”" in digest.body
    assert "nothing was charged" in digest.body
    assert by_owner[other_user.email].subject == "Promptreel: your video could not be made"
    # The kicks those commits queue find nothing left to send.
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 2


def test_a_lost_kick_is_covered_by_the_minute_schedule(user, django_capture_on_commit_callbacks):
    from django_q.models import Schedule

    assert Schedule.objects.filter(func="workflows.tasks.notify_outcomes", minutes=1).exists()
    # A process queued nothing after shutting the gate (it died in between).
    assert cache.add(notifications.KICK_KEY, 1, timeout=300)
    generation = GenerationFactory(user=user, state=State.IN_PROGRESS, prompt="a paper boat")
    with django_capture_on_commit_callbacks(execute=True):
        move(generation.pk, State.FAILED, error_message="x")
    assert mail.outbox == []  # the kick met the shut gate
    assert tasks.notify_outcomes() == 1  # the schedule's run
    assert "a paper boat" in mail.outbox[0].body
    # The gate is open again: the next clip is emailed as it ends.
    second = GenerationFactory(user=user, state=State.IN_PROGRESS, prompt="a tin drum")
    with django_capture_on_commit_callbacks(execute=True):
        move(second.pk, State.FAILED, error_message="x")
    assert len(mail.outbox) == 2 and "a tin drum" in mail.outbox[1].body


def test_clips_that_ended_long_ago_are_not_announced(user):
    stale = GenerationFactory(
        user=user,
        state=State.FAILED,
        finished_at=timezone.now() - notifications.NOTICE_WINDOW - timedelta(minutes=1),
    )
    assert notifications.outcomes_notify() == 0
    stale.refresh_from_db()
    assert stale.owner_notified_at is None and mail.outbox == []


def test_a_clip_whose_owner_turned_emails_off_is_claimed_and_not_sent(user):
    user.notify_by_email = False
    user.save(update_fields=["notify_by_email"])
    generation = GenerationFactory(user=user, state=State.FAILED, finished_at=timezone.now())
    assert notifications.outcomes_notify() == 0
    generation.refresh_from_db()
    assert generation.owner_notified_at is not None and mail.outbox == []
    # Switched back on, it is not announced after all.
    user.notify_by_email = True
    user.save(update_fields=["notify_by_email"])
    assert notifications.outcomes_notify() == 0
