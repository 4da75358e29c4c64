"""Sign up, confirm the emailed link and land signed in, in a real Chromium; the settings page
turns the clip emails off."""

import re

import pytest
from django.core import mail

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_then_the_emailed_link_signs_you_in(tabs):
    tab = tabs()
    page = tab.page
    tab.open("/accounts/signup/")
    assert page.locator(".auth-card h1").is_visible()  # the site's card, not allauth's page
    page.fill("input[name=email]", "newcomer@example.com")
    page.fill("input[name=password1]", "a long passphrase 42")
    page.fill("input[name=password2]", "a long passphrase 42")
    page.check("input[name=accept_policies]")
    page.click(".auth-card form button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/confirm-email/$"))
    (message,) = mail.outbox
    assert message.body.startswith("Hello from Promptreel!")
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", message.body).group(0)
    tab.open("/accounts/confirm-email/" + link.split("/accounts/confirm-email/", 1)[1])
    page.click(".auth-card form button[type=submit]")  # "Confirm"
    page.wait_for_url(re.compile(r"/generate/$"))
    assert page.locator("a.who").inner_text() == "newcomer@example.com"

    # On by default; the settings page turns it off.
    tab.open("/settings/")
    box = page.locator("input[name=notify_by_email]")
    assert box.is_checked()
    box.uncheck()
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("text=Saved.")
    assert User.objects.get(email="newcomer@example.com").notify_by_email is False
