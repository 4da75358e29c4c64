"""Users report outputs they can see; duplicates fold; reporters never learn who decided."""

import pytest
from django.template import Context, Template
from django.urls import reverse

from generation.models import State
from moderation import services
from moderation.models import Report, ReportedGeneration
from tests.factories import GenerationFactory
from workflows import review

from .conftest import make_held

pytestmark = pytest.mark.django_db


@pytest.fixture
def output(user):
    return GenerationFactory(
        user=user, state=State.SUCCEEDED, output="outputs/x.mp4", poster="posters/x.jpg"
    )


def test_report_form_page_and_submission(alice_client, output):
    url = reverse("moderation_report", args=[output.pk])
    assert alice_client.get(url).status_code == 200
    response = alice_client.post(
        url, {"reason": "hate", "details": "a symbol at 0:03"}, follow=True
    )
    assert response.redirect_chain[-1][0] == output.get_absolute_url()
    assert "moderators will review it" in response.content.decode()
    report = Report.objects.get()
    assert (report.reason, report.details, report.status) == ("hate", "a symbol at 0:03", "open")
    assert ReportedGeneration.objects.get().pk == output.pk


def test_duplicate_reports_fold_into_one(alice_client, output):
    url = reverse("moderation_report", args=[output.pk])
    alice_client.post(url, {"reason": "hate"})
    second = alice_client.post(url, {"reason": "harassment", "details": "more"}, follow=True)
    assert "moderators will review it" in second.content.decode()
    report = Report.objects.get()
    assert (report.times, report.reason, report.details) == (2, "harassment", "more")
    assert ReportedGeneration.objects.get().open_reports == 1


def test_report_after_dismissal_reopens(alice_client, output, moderator):
    services.report_create(generation=output, reporter=output.user, reason="hate")
    services.reports_dismiss(generation=output, moderator=moderator)
    assert not ReportedGeneration.objects.exists()
    alice_client.post(reverse("moderation_report", args=[output.pk]), {"reason": "hate"})
    assert Report.objects.get().status == "open" and Report.objects.get().decided_by is None


def test_cannot_report_what_you_cannot_see(bob_client, client, output):
    url = reverse("moderation_report", args=[output.pk])
    assert bob_client.post(url, {"reason": "hate"}).status_code == 404
    assert bob_client.get(url).status_code == 404
    missing = reverse("moderation_report", args=["00000000-0000-0000-0000-000000000000"])
    assert bob_client.post(missing, {"reason": "hate"}).status_code == 404
    assert client.post(url, {"reason": "hate"}).status_code == 302  # sign in first
    assert not Report.objects.exists()


def test_invalid_reason_is_a_400(alice_client, output):
    response = alice_client.post(reverse("moderation_report", args=[output.pk]), {"reason": "x"})
    assert response.status_code == 400 and not Report.objects.exists()


def test_reporter_never_sees_who_decided(alice_client, output, moderator):
    alice_client.post(reverse("moderation_report", args=[output.pk]), {"reason": "hate"})
    services.output_take_down(generation=output, moderator=moderator, category="hate")
    page = alice_client.get(output.get_absolute_url()).content.decode()
    assert moderator.email not in page


def _render(snippet, **context):
    return Template("{% load moderation %}" + snippet).render(Context(context))


def test_notice_snippet_for_held_blocked_and_taken_down(user, moderator, output):
    assert _render("{% moderation_notice g %}", g=output).strip() == ""
    held = make_held(user)
    assert "Awaiting review" in _render("{% moderation_notice g %}", g=held)
    review.held_reject(generation=held, moderator=moderator, category="hate")
    held.refresh_from_db()
    blocked = _render("{% moderation_notice g %}", g=held)
    assert "Refused under our content policy" in blocked and "Hate" in blocked
    services.output_take_down(generation=output, moderator=moderator, category="hate")
    taken = _render("{% moderation_notice g %}", g=output)
    assert "taken down" in taken and "Hate" in taken and moderator.email not in taken


def test_report_form_snippet(output):
    html = _render("{% report_form g %}", g=output, csrf_token="tok")
    assert reverse("moderation_report", args=[output.pk]) in html and 'value="tok"' in html
