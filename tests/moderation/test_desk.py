"""The moderator desk: a button per decision on each queue row and item page, one form with a
private note and a message to the owner, pending counts on the admin index, one email to the
owner per decision."""

import pytest
from django.core import mail
from django.urls import reverse

from generation.models import State
from moderation import services
from moderation.models import ModerationCase, TakeDown, UserStanding

from .conftest import make_held
from .test_queues import HELD, _succeeded

pytestmark = pytest.mark.django_db


@pytest.fixture
def post(django_capture_on_commit_callbacks):
    """POST as the browser does; the decision's emails go once its transaction commits."""

    def send(client, url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data)

    return send


def decide_url(kind: str, generation, decision: str) -> str:
    return reverse(f"admin:moderation_{kind}generation_decide", args=[generation.pk, decision])


def test_the_admin_index_shows_what_waits(moderator_client, user):
    make_held(user)
    make_held(user)
    services.report_create(generation=_succeeded(user), reporter=user, reason="hate")
    page = moderator_client.get(reverse("admin:index")).content.decode()
    assert "Waiting for a moderator" in page
    assert "Held prompts: <strong>2</strong>" in page
    assert "Reported outputs: <strong>1</strong>" in page


def test_plain_staff_see_no_desk_counts(staff_client):
    assert (
        "Waiting for a moderator" not in staff_client.get(reverse("admin:index")).content.decode()
    )


def test_every_row_and_item_page_has_its_buttons(moderator_client, user):
    held = make_held(user)
    for url in (HELD, reverse("admin:moderation_heldgeneration_change", args=[held.pk])):
        page = moderator_client.get(url).content.decode()
        for decision in ("approve", "reject", "suspend"):
            assert decide_url("held", held, decision) in page


def test_approve_from_its_button_tells_the_owner_once(post, moderator_client, user):
    held = make_held(user)
    url = decide_url("held", held, "approve")
    assert moderator_client.get(url).status_code == 200
    data = {"note": "checked the reference photo", "message": "Enjoy!"}
    response = post(moderator_client, url, data)
    assert response.status_code == 302 and response.url == HELD
    held.refresh_from_db()
    assert held.state not in (State.HELD, State.BLOCKED)  # queued, and submitted on commit
    (email,) = mail.outbox
    assert email.to == [user.email] and "approved" in email.subject
    assert "Enjoy!" in email.body and "reference photo" not in email.body
    # The same decision again does nothing and tells nobody.
    post(moderator_client, url, data)
    assert len(mail.outbox) == 1


def test_reject_shows_the_message_and_never_the_private_note(
    post, moderator_client, alice_client, user
):
    held = make_held(user)
    post(
        moderator_client,
        decide_url("held", held, "reject"),
        {
            "category": "hate",
            "note": "PRIVATE: same user as ticket 42",
            "message": "Please read the policy.",
        },
    )
    held.refresh_from_db()
    assert held.state == State.BLOCKED
    case = ModerationCase.objects.get(generation=held)
    assert case.decision_note.startswith("PRIVATE") and case.user_message
    (email,) = mail.outbox
    assert "Please read the policy." in email.body and "PRIVATE" not in email.body
    page = alice_client.get(held.get_absolute_url()).content.decode()
    assert "Please read the policy." in page and "PRIVATE" not in page


def test_take_down_and_dismiss_from_their_buttons(post, moderator_client, alice_client, user):
    reported = _succeeded(user)
    services.report_create(generation=reported, reporter=user, reason="hate")
    post(
        moderator_client,
        decide_url("reported", reported, "take_down"),
        {"category": "", "note": "PRIVATE note", "message": "It shows a real person."},
    )
    takedown = TakeDown.objects.get(generation=reported)
    assert "It shows a real person." in takedown.reason and "PRIVATE" not in takedown.reason
    assert takedown.note == "PRIVATE note"
    page = alice_client.get(reported.get_absolute_url()).content.decode()
    assert "It shows a real person." in page and "PRIVATE" not in page
    assert [m.subject for m in mail.outbox] == ["Promptreel: your video was taken down"]

    other = _succeeded(user)
    services.report_create(generation=other, reporter=user, reason="hate")
    post(moderator_client, decide_url("reported", other, "dismiss"), {"note": ""})
    assert not other.reports.filter(status="open").exists()
    assert len(mail.outbox) == 1  # dismissing reports tells the owner nothing


def test_suspend_from_a_queue_row(post, moderator_client, user):
    held = make_held(user)
    post(moderator_client, decide_url("held", held, "suspend"), {"note": "spam wave"})
    assert UserStanding.objects.get(user=user).is_suspended
    assert [m.subject for m in mail.outbox] == ["Promptreel: your account is suspended"]


def test_plain_staff_cannot_open_a_decision(staff_client, user):
    held = make_held(user)
    assert staff_client.get(decide_url("held", held, "approve")).status_code == 403
    assert staff_client.post(decide_url("held", held, "approve"), {}).status_code == 403
    held.refresh_from_db()
    assert held.state == State.HELD


def test_an_unknown_decision_is_refused(moderator_client, user):
    held = make_held(user)
    assert moderator_client.get(decide_url("held", held, "delete")).status_code == 403


def test_the_report_form_starts_with_no_reason(alice_client, user):
    output = _succeeded(user)
    page = alice_client.get(output.get_absolute_url()).content.decode()
    assert '<option value="" selected>Choose a reason…</option>' in page


def test_a_preview_whose_file_is_gone_is_a_404_not_a_500(moderator_client, user):
    output = _succeeded(user)  # its files were never written
    response = moderator_client.get(reverse("moderation_media", args=[output.pk, "poster"]))
    assert response.status_code == 404


def test_a_blocked_page_offers_no_retry_of_the_same_prompt(
    moderator_client, alice_client, post, user
):
    held = make_held(user)
    post(moderator_client, decide_url("held", held, "reject"), {"category": "hate"})
    page = alice_client.get(held.get_absolute_url()).content.decode()
    assert "Not available." in page
    assert "Try again" not in page and "Copy settings" not in page and "Cancel" not in page
