"""Per-IP limits on sign-up and login (allauth's, counted in the shared cache)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_sign_up_is_limited_per_ip(client):
    codes = []
    for index in range(21):
        response = client.post(
            reverse("account_signup"),
            {
                "email": f"person{index}@example.com",
                "password1": "a long passphrase 42",
                "password2": "a long passphrase 42",
                "accept_policies": "on",
            },
            REMOTE_ADDR="203.0.113.50",
        )
        codes.append(response.status_code)
    assert codes[:20] == [302] * 20
    assert codes[20] == 429


def test_failed_logins_are_limited(client, user):
    answers = [
        client.post(
            reverse("account_login"),
            {"login": user.email, "password": "wrong password"},
            REMOTE_ADDR="203.0.113.51",
        )
        for _ in range(6)
    ]
    # Five wrong passwords for one account, then even the right one is refused for a while.
    assert b"Too many failed login attempts" not in answers[4].content
    assert b"Too many failed login attempts" in answers[5].content
    right = client.post(
        reverse("account_login"),
        {"login": user.email, "password": "correct horse battery"},
        REMOTE_ADDR="203.0.113.51",
    )
    assert right.status_code == 200 and b"Too many failed login attempts" in right.content
