"""Policy pages, footer links and sign-up that requires accepting the policies."""

import pytest
from django.urls import reverse

from accounts.models import User
from moderation.models import PolicyAcceptance

pytestmark = pytest.mark.django_db

SIGNUP = {
    "email": "new@example.com",
    "password1": "a long passphrase 42",
    "password2": "a long passphrase 42",
}


def test_policy_pages_list_every_category(client):
    content = client.get(reverse("policy_content"))
    assert content.status_code == 200
    text = content.content.decode()
    for title in ("Sexual content involving minors", "Non-consensual intimate imagery", "Hate",
                  "Harassment", "Graphic violence", "Self-harm", "Illegal activity",
                  "Impersonation of real people"):  # fmt: skip
        assert title in text
    assert client.get(reverse("policy_acceptable_use")).status_code == 200


def test_footer_links_the_policies(client, alice_client):
    for page in (client.get(reverse("home")), alice_client.get(reverse("generate"))):
        text = page.content.decode()
        assert reverse("policy_content") in text and reverse("policy_acceptable_use") in text


def test_sign_up_without_accepting_the_policies_is_refused(client):
    response = client.post(reverse("account_signup"), SIGNUP)
    assert response.status_code == 200
    assert "accept the content and acceptable use policies" in response.content.decode()
    assert not User.objects.exists()


def test_sign_up_records_the_acceptance(client):
    response = client.post(reverse("account_signup"), {**SIGNUP, "accept_policies": "on"})
    assert response.status_code == 302
    acceptance = PolicyAcceptance.objects.get()
    assert acceptance.user.email == "new@example.com" and acceptance.version
    page = client.get(reverse("account_signup"))
    assert page.status_code in (200, 302)
