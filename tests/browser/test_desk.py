"""A moderator clears the desk in a real browser: every decision from the admin index in at
most three clicks (open the queue, the decision's button, Confirm)."""

import pytest
from django.test import Client

from generation.models import Generation, State
from moderation import services
from moderation.models import TakeDown, UserStanding
from tests.factories import UserFactory
from tests.moderation.conftest import make_held
from tests.moderation.test_queues import _succeeded

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Clicks:
    def __init__(self, page):
        self.page, self.count = page, 0

    def __call__(self, selector: str) -> None:
        self.count += 1
        self.page.click(selector)


@pytest.fixture
def desk(browser_page, live_server):
    # A superuser: transactional tests flush the moderators group that a migration made.
    moderator = UserFactory(email="mod@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(moderator)
    browser_page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )

    def open_index() -> Clicks:
        browser_page.goto(f"{live_server.url}/admin/")
        return Clicks(browser_page)

    return browser_page, open_index


def _button(generation, decision: str) -> str:
    return f'a.desk-decision[href*="/{generation.pk}/decide/{decision}/"]'


def test_each_decision_takes_at_most_three_clicks(desk):
    page, open_index = desk
    owner = UserFactory(email="owner@example.com")
    to_approve, to_reject = make_held(owner), make_held(owner)
    to_take_down, to_dismiss = _succeeded(owner), _succeeded(owner)
    for output in (to_take_down, to_dismiss):
        services.report_create(generation=output, reporter=owner, reason="hate")

    click = open_index()
    assert page.locator(".desk-pending").is_visible()
    click("text=Held prompts")
    click(_button(to_approve, "approve"))
    click("button:has-text('Confirm')")
    assert click.count == 3
    assert Generation.objects.get(pk=to_approve.pk).state != State.HELD

    click = open_index()
    click("text=Held prompts")
    click(_button(to_reject, "reject"))
    page.fill("textarea[name=message]", "Please read the content policy.")
    click("button:has-text('Confirm')")
    assert click.count == 3
    assert Generation.objects.get(pk=to_reject.pk).state == State.BLOCKED
    page.locator("text=Reject: done.").wait_for()

    click = open_index()
    click("text=Reported outputs")
    click(_button(to_take_down, "take_down"))
    # Keyboard only: Confirm has the focus when the page opens, so Enter decides.
    page.wait_for_function("document.activeElement && document.activeElement.type === 'submit'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert click.count == 2
    assert TakeDown.objects.filter(generation=to_take_down).exists()

    click = open_index()
    click("text=Reported outputs")
    click(_button(to_dismiss, "dismiss"))
    click("button:has-text('Confirm')")
    assert click.count == 3
    assert not to_dismiss.reports.filter(status="open").exists()

    click = open_index()
    click("text=Held prompts: ")
    pending = make_held(owner)
    page.reload()
    click(_button(pending, "suspend"))
    click("button:has-text('Confirm')")
    assert click.count == 3
    assert UserStanding.objects.get(user=owner).is_suspended
