"""Moderators clear the held queue and the reports queue from admin; nobody else can."""

import pytest
from django.urls import reverse

from core.models import AuditEntry
from generation.models import Generation, State
from moderation import services
from moderation.models import ModerationCase, Report, TakeDown, UserStanding
from tests.factories import GenerationFactory, UserFactory
from workflows import review

from .conftest import make_held

pytestmark = pytest.mark.django_db

HELD = reverse("admin:moderation_heldgeneration_changelist")
REPORTED = reverse("admin:moderation_reportedgeneration_changelist")
STANDINGS = reverse("admin:moderation_userstanding_changelist")


def _act(client, url, action, objs, **extra):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objs], **extra}
    return client.post(url, data)


def _succeeded(user, **kwargs):
    return GenerationFactory(
        user=user, state=State.SUCCEEDED, output="outputs/x.mp4", poster="posters/x.jpg", **kwargs
    )


def test_held_queue_lists_held_rows_with_the_reason(moderator_client, user):
    held = make_held(user)
    GenerationFactory(user=user)  # queued: not in the queue
    page = moderator_client.get(HELD)
    assert page.status_code == 200
    text = page.content.decode()
    assert str(held.pk) in text and "Graphic violence" in text
    assert page.context["cl"].result_count == 1


def test_approve_runs_the_generation(moderator_client, moderator, user, monkeypatch,
                                     django_capture_on_commit_callbacks):  # fmt: skip
    submitted = []
    monkeypatch.setattr(review, "enqueue_submit", submitted.append)
    held = make_held(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = _act(moderator_client, HELD, "approve", [held])
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.state == State.QUEUED and held.queued_at
    assert submitted == [held.pk]
    case = ModerationCase.objects.get(generation=held)
    assert case.status == "approved" and case.decided_by == moderator
    entry = AuditEntry.objects.get(action="moderation.approve")
    assert entry.actor == moderator and entry.target_id == str(held.pk)
    assert entry.before == {"state": "held"} and entry.after == {"state": "queued"}
    assert entry.ip == "127.0.0.1"
    # Approving again does nothing.
    assert not review.held_approve(generation=held, moderator=moderator)


def test_reject_asks_for_a_policy_then_blocks_and_tells_the_user(
    moderator_client, moderator, user, alice_client
):
    held = make_held(user)
    page = _act(moderator_client, HELD, "reject", [held])
    assert page.status_code == 200 and b"Reject held generations" in page.content
    assert Generation.objects.get(pk=held.pk).state == State.HELD
    response = _act(
        moderator_client, HELD, "reject", [held],
        confirm="1", category="hate", reason="dog whistle",
    )  # fmt: skip
    assert response.status_code == 302
    held.refresh_from_db()
    assert held.state == State.BLOCKED and held.finished_at
    assert held.error_code == "moderation_blocked"
    assert held.error_message.startswith("Hate — ")
    entry = AuditEntry.objects.get(action="moderation.reject")
    assert entry.reason == "Hate. dog whistle" and entry.after["category"] == "hate"
    assert UserStanding.objects.get(user=user).violations == 1
    # The owner sees why, and not who.
    page = alice_client.get(held.get_absolute_url()).content.decode()
    assert "Hate" in page and moderator.email not in page


def test_plain_staff_and_users_cannot_moderate(staff_client, alice_client, client, user):
    held = make_held(user)
    reported = _succeeded(user)
    services.report_create(generation=reported, reporter=user, reason="hate")
    for url in (
        HELD,
        REPORTED,
        STANDINGS,
        reverse("admin:moderation_report_changelist"),
        reverse("admin:moderation_moderationcase_changelist"),
        reverse("admin:core_auditentry_changelist"),
    ):
        assert staff_client.get(url).status_code == 403, url
        assert alice_client.get(url).status_code == 302, url  # not staff: admin login
        assert client.get(url).status_code == 302, url
    assert _act(staff_client, HELD, "approve", [held]).status_code == 403
    assert _act(staff_client, HELD, "reject", [held], confirm="1").status_code == 403
    assert _act(staff_client, REPORTED, "take_down", [reported], confirm="1").status_code == 403
    assert _act(staff_client, REPORTED, "dismiss_reports", [reported]).status_code == 403
    assert _act(alice_client, HELD, "approve", [held]).status_code == 302
    assert Generation.objects.get(pk=held.pk).state == State.HELD
    assert not TakeDown.objects.exists()
    assert Report.objects.get().status == "open"
    admin_index = staff_client.get(reverse("admin:index")).content.decode()
    assert "held generations" not in admin_index.lower()


def test_services_refuse_non_moderators(plain_staff, user):
    held = make_held(user)
    with pytest.raises(services.PermissionDenied):
        review.held_approve(generation=held, moderator=plain_staff)
    with pytest.raises(services.PermissionDenied):
        services.user_suspend(user=user, actor=plain_staff)


def test_reported_output_reaches_the_queue_and_is_taken_down(
    moderator_client, moderator, user, other_user
):
    output = _succeeded(user)
    services.report_create(generation=output, reporter=user, reason="graphic_violence")
    services.report_create(generation=output, reporter=user, reason="graphic_violence")
    page = moderator_client.get(REPORTED)
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    text = page.content.decode()
    assert "<video" in text and reverse("moderation_media", args=[output.pk, "video"]) in text
    assert "Graphic violence" in text
    response = _act(moderator_client, REPORTED, "take_down", [output], confirm="1", reason="gore")
    assert response.status_code == 302
    assert services.output_is_taken_down(output)
    assert TakeDown.objects.get().category == "graphic_violence"  # the reporters' reason
    assert Report.objects.get().status == "actioned"
    assert moderator_client.get(REPORTED).context["cl"].result_count == 0
    assert AuditEntry.objects.filter(action="moderation.take_down").count() == 1
    assert UserStanding.objects.get(user=user).violations == 1


def test_dismiss_closes_reports(moderator_client, user):
    output = _succeeded(user)
    services.report_create(generation=output, reporter=user, reason="hate")
    assert _act(moderator_client, REPORTED, "dismiss_reports", [output]).status_code == 302
    assert Report.objects.get().status == "dismissed"
    assert not services.output_is_taken_down(output)
    assert AuditEntry.objects.filter(action="moderation.report_dismiss").count() == 1


def test_suspend_and_unsuspend(moderator_client, moderator, user):
    held = make_held(user)
    assert not services.user_is_suspended(user)
    response = _act(moderator_client, HELD, "suspend_owner", [held], confirm="1", reason="spam")
    assert response.status_code == 302
    assert services.user_is_suspended(user)
    standing = UserStanding.objects.get(user=user)
    response = _act(moderator_client, STANDINGS, "unsuspend", [standing])
    assert response.status_code == 302
    assert not services.user_is_suspended(user)
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor"))
    assert actions[-2:] == [("user.suspend", moderator.pk), ("user.unsuspend", moderator.pk)]


def test_repeat_violations_suspend_automatically(settings, moderator, user):
    settings.AUTO_SUSPEND_AFTER_VIOLATIONS = 2
    for _ in range(2):
        review.held_reject(generation=make_held(user), moderator=moderator)
    assert services.user_is_suspended(user)
    entry = AuditEntry.objects.get(action="user.auto_suspend")
    assert entry.actor is None and "2 confirmed" in entry.reason


def test_moderator_media_is_for_moderators_only(moderator_client, staff_client, alice_client,
                                                user, settings):  # fmt: skip
    output = _succeeded(user)
    path = settings.MEDIA_ROOT / "posters" / "x.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xff\xd8\xff poster")
    url = reverse("moderation_media", args=[output.pk, "poster"])
    assert staff_client.get(url).status_code == 403
    assert alice_client.get(url).status_code == 403  # even the owner: use the normal view
    response = moderator_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xff\xd8\xff poster"


def test_suspended_users_are_reported_by_user_is_suspended(moderator, user):
    other = UserFactory()
    services.user_suspend(user=user, actor=moderator, reason="x")
    assert services.user_is_suspended(user) and not services.user_is_suspended(other)
    assert not services.user_suspend(user=user, actor=moderator)  # already suspended


def test_moderator_pages_render(moderator_client, user):
    held = make_held(user)
    output = _succeeded(user)
    services.report_create(generation=output, reporter=user, reason="hate")
    pages = [
        reverse("admin:moderation_heldgeneration_change", args=[held.pk]),
        reverse("admin:moderation_reportedgeneration_change", args=[output.pk]),
        reverse("admin:moderation_moderationcase_changelist"),
        reverse("admin:moderation_report_changelist"),
        reverse("admin:moderation_takedown_changelist"),
        STANDINGS,
        reverse("admin:index"),
    ]
    for url in pages:
        assert moderator_client.get(url).status_code == 200, url
    index = moderator_client.get(reverse("admin:index")).content.decode().lower()
    assert "held generations" in index and "reported outputs" in index
    standing = UserStanding.objects.create(user=user)
    page = _act(moderator_client, STANDINGS, "suspend", [standing])
    assert page.status_code == 200 and b"Suspend users" in page.content


@pytest.mark.parametrize("url", [HELD, REPORTED])
def test_queue_pages_cost_the_same_queries_for_one_row_or_many(moderator_client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert moderator_client.get(url).status_code == 200
        return len(queries)

    def add_row():
        owner = UserFactory()
        UserStanding.objects.create(user=owner, violations=1)
        if url == HELD:
            make_held(owner)
        else:
            services.report_create(generation=_succeeded(owner), reporter=owner, reason="hate")

    add_row()
    one = page_queries()
    for _ in range(4):
        add_row()
    assert page_queries() == one
