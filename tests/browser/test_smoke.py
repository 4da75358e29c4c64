"""A person's first minute: sign in as the demo user, generate, watch the video appear."""

import pytest
from django.conf import settings

from accounts.services import user_ensure_demo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_user():
    return user_ensure_demo(email=settings.DEMO_EMAIL, password=settings.DEMO_PASSWORD)


def test_demo_user_generates_and_sees_a_video(
    live_server, demo_user, tracker, browser_page, tmp_path
):
    page = browser_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", settings.DEMO_EMAIL)
    page.fill("input[name=password]", settings.DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/generate/")

    page.fill("textarea[name=prompt]", "a paper boat on a rainy street")
    page.check("input[name=preset][value=dolly_in]")
    page.click("#generate-form button[type=submit]")

    page.wait_for_selector("video source", state="attached")
    source = page.get_attribute("video source", "src")
    assert source and source.endswith("/video/")
    assert "AI-generated" in page.inner_text("figcaption")
    page.screenshot(path=str(tmp_path / "generated.png"))
    # The browser can fetch the file it was given, as the signed-in user.
    response = page.request.get(f"{live_server.url}{source}")
    assert response.status == 200 and response.headers["content-type"] == "video/mp4"
