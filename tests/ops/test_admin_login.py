"""The admin signs in through allauth: the same lockout as the site, and it is audited."""

import uuid

import pytest
from django.urls import reverse

from core.models import AuditAction, AuditEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOCKED = b"Too many failed login attempts"


@pytest.fixture
def staff():
    # A fresh address per test: the lockout counters live in the shared cache.
    return UserFactory(email=f"staff-{uuid.uuid4().hex[:8]}@example.com", is_staff=True)


def sign_in(client, email, password, ip="203.0.113.60"):
    return client.post(
        f"{reverse('account_login')}?next=/admin/",
        {"login": email, "password": password},
        REMOTE_ADDR=ip,
    )


def test_admin_sends_people_to_the_site_sign_in(client):
    answer = client.get("/admin/")
    assert answer.status_code == 302
    follow = client.get(answer["Location"])
    assert follow.status_code == 302
    assert follow["Location"] == f"{reverse('account_login')}?next=%2Fadmin%2F"


def test_admins_own_password_form_is_not_served(client, staff):
    answer = client.post(
        "/admin/login/?next=/admin/",
        {"username": staff.email, "password": "correct horse battery"},
    )
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session


def test_staff_signs_in_to_the_admin_and_it_is_audited(client, staff):
    answer = sign_in(client, staff.email, "correct horse battery")
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    entry = AuditEntry.objects.get(action=AuditAction.STAFF_LOGIN)
    assert (entry.actor, entry.target_id, entry.ip) == (staff, str(staff.pk), "203.0.113.60")


def test_admin_login_locks_after_five_failures_and_audits_it(client, staff):
    answers = [sign_in(client, staff.email, "wrong password") for _ in range(6)]
    assert LOCKED not in answers[4].content
    assert LOCKED in answers[5].content
    # Locked: even the right password is refused, and the admin stays closed.
    right = sign_in(client, staff.email, "correct horse battery")
    assert right.status_code == 200 and LOCKED in right.content
    assert client.get("/admin/").status_code == 302

    failed = AuditEntry.objects.filter(action=AuditAction.STAFF_LOGIN_FAILED)
    assert failed.count() == 5
    assert {entry.target_id for entry in failed} == {str(staff.pk)}
    # One lockout entry however many attempts hit the lock.
    locked = AuditEntry.objects.get(action=AuditAction.LOGIN_LOCKED)
    assert locked.target_id == str(staff.pk) and staff.email in locked.reason
    assert not AuditEntry.objects.filter(action=AuditAction.STAFF_LOGIN).exists()


def test_signed_in_non_staff_get_a_refusal_not_a_loop(client, user):
    client.force_login(user)
    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_next_cannot_point_elsewhere(client, staff):
    client.force_login(staff)
    answer = client.get("/admin/login/?next=https://evil.example/")
    assert answer["Location"] == "/admin/"


def test_failed_sign_in_of_a_plain_user_is_not_audited(client):
    user = UserFactory(email=f"plain-{uuid.uuid4().hex[:8]}@example.com")
    sign_in(client, user.email, "wrong password")
    assert not AuditEntry.objects.exists()
