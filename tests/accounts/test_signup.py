import io
import re

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from accounts.services import user_ensure_demo

pytestmark = pytest.mark.django_db


def test_sign_up_verify_email_then_generate(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "New.Person@Example.com",
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "accept_policies": "on",
        },
    )
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "new.person@example.com"
    # Mandatory verification: no access until the emailed link is followed.
    assert client.get(reverse("generate")).status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject.startswith("[Promptreel] ")
    assert message.body.startswith("Hello from Promptreel!")
    assert "testserver" not in message.body.splitlines()[0]
    assert message.body.rstrip().endswith("http://testserver/")
    link = re.search(r"https?://[^\s]+/accounts/confirm-email/[^\s]+", mail.outbox[0].body).group(0)
    confirm_path = link.split("testserver", 1)[1]
    response = client.post(confirm_path)
    # Signed in by the confirmation (ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION), straight to work.
    assert response.status_code == 302 and response["Location"] == reverse("generate")
    assert client.get(reverse("generate")).status_code == 200
    # The link clicked again: not "invalid", but where to go from here.
    again = client.get(confirm_path).content.decode()
    assert "used already" in again and reverse("generate") in again


def test_unverified_user_cannot_log_in(client):
    User.objects.create_user("pending@example.com", "a long passphrase 42")
    response = client.post(
        reverse("account_login"),
        {"login": "pending@example.com", "password": "a long passphrase 42"},
    )
    assert response.status_code == 302
    assert "confirm-email" in response["Location"]
    assert client.get(reverse("generate")).status_code == 302


def test_duplicate_email_makes_no_account_and_reveals_nothing(client, user):
    response = client.post(
        reverse("account_signup"),
        {
            "email": user.email.upper(),
            "password1": "a long passphrase 42",
            "password2": "a long passphrase 42",
            "accept_policies": "on",
        },
    )
    # The same answer as a real sign-up, so nobody can probe which emails have accounts;
    # the owner of the address is told instead.
    assert response.status_code == 302
    assert User.objects.count() == 1
    assert [message.to for message in mail.outbox] == [[user.email]]


def test_login_page_uses_the_site_layout(client):
    page = client.get(reverse("account_login")).content.decode()
    assert "Promptreel" in page and "Sign up" in page


def test_password_reset_sends_a_link(client, user):
    response = client.post(reverse("account_reset_password"), {"email": user.email})
    assert response.status_code == 302
    assert "password/reset/key" in mail.outbox[0].body


def test_demo_user_is_verified_and_idempotent():
    first, created = user_ensure_demo(email="demo@example.com", password="pw-one-two-three")
    again, created_again = user_ensure_demo(email="demo@example.com", password="pw-one-two-three")
    assert created and not created_again and first.pk == again.pk
    assert first.emailaddress_set.get().verified
    assert again.check_password("pw-one-two-three")


def test_the_demo_staff_account_signs_in_to_the_admin_at_once(client, settings):
    from django.core.management import call_command

    settings.DEBUG = False
    call_command("ensure_demo_user", "--staff", stdout=io.StringIO())
    assert not User.objects.filter(email=settings.DEMO_STAFF_EMAIL).exists()  # never in prod
    settings.DEBUG = True
    out = io.StringIO()
    call_command("ensure_demo_user", "--staff", stdout=out)
    assert settings.DEMO_STAFF_EMAIL in out.getvalue()
    staff = User.objects.get(email=settings.DEMO_STAFF_EMAIL)
    assert staff.is_superuser and staff.groups.filter(name="moderators").exists()
    signed_in = client.post(
        reverse("account_login"),
        {"login": settings.DEMO_STAFF_EMAIL, "password": settings.DEMO_PASSWORD},
    )
    assert signed_in.status_code == 302 and "confirm-email" not in signed_in["Location"]
    assert client.get("/admin/").status_code == 200


def test_the_sign_up_form_asks_for_the_policies_after_the_passwords(client):
    page = client.get(reverse("account_signup")).content.decode()
    order = [page.index(f'name="{name}"') for name in ("email", "password1", "password2")]
    assert order == sorted(order) and page.index('name="accept_policies"') > order[-1]
