"""The staff dashboard in Chromium on a laptop and a phone: it loads with no Content-Security-
Policy complaint and no sideways scrolling of the page (wide tables scroll in their own box)."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from desk import rollup
from generation.models import State, Tier
from tests.factories import UserFactory
from tests.ops.test_dashboard import make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_dashboard_fits_the_screen_without_csp_errors(
    browser_page,
    live_server,
    tmp_path,
    width,
    height,
):
    page = browser_page
    owner = UserFactory()
    yesterday = timezone.now().date() - dt.timedelta(days=1)
    for hour in (3, 9, 15, 21):
        created = dt.datetime.combine(yesterday, dt.time(hour), tzinfo=dt.UTC)
        for n in range(hour // 3):
            make(owner, created, State.SUCCEEDED, stages=(2, 10 + n, 40 + hour, 5))
        make(owner, created, State.FAILED, error_code="provider_error")
        make(owner, created, State.SUCCEEDED, stages=(1, 1, 30, 2), tier=Tier.HD, price="0.45")
    rollup.rollup_days(days=[yesterday])

    staff = UserFactory(is_staff=True)
    client = Client()
    client.force_login(staff)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    complaints = []
    page.on(
        "console",
        lambda message: complaints.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: complaints.append(str(error)))
    # The admin pages name no icon; Chromium's own request for one is not the page's doing.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/admin/dashboard/?days=7&day={yesterday.isoformat()}")
    page.locator("svg.chart").first.wait_for()

    assert page.locator("svg.chart").count() == 5
    assert page.locator("svg.chart rect.s-succeeded").count() >= 4  # bars were drawn
    assert page.locator(".dash-cards").inner_text().count("$") >= 2
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}px"
    assert complaints == []
    # The admin's own CSS must still apply (a refused stylesheet would leave it unstyled).
    assert page.evaluate("getComputedStyle(document.querySelector('.legend')).display") == "flex"
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"dashboard-{width}x{height}.png"), full_page=True)
