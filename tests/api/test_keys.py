from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api import keys
from api.models import ApiKey, Scope
from api.services import apikey_create, apikey_revoke
from tests.api.conftest import client_with

pytestmark = pytest.mark.django_db


def test_key_format_is_typed_and_checksummed():
    raw = keys.new_key()
    assert raw.startswith("prk_") and len(raw) == keys.KEY_LENGTH
    assert keys.well_formed(raw)
    tampered = raw[:-7] + ("A" if raw[-7] != "A" else "B") + raw[-6:]
    assert not keys.well_formed(tampered)


def test_raw_key_is_never_stored(user):
    api_key, raw = apikey_create(user=user, name="ci", scopes=[Scope.GENERATIONS_READ])
    assert api_key.key_hash == keys.digest(raw) and raw not in api_key.key_hash
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM api_apikey")
        dump = repr(cursor.fetchall())
    assert raw not in dump and raw[len(api_key.prefix) :] not in dump
    assert api_key.prefix in dump


def test_valid_key_authenticates_and_records_use(alice_key):
    api_key, raw = alice_key
    response = client_with(raw).get("/api/v1/generations")
    assert response.status_code == 200
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("Bearer ", "no key"),
        ("Bearer prk_short", "malformed"),
        ("Bearer prk_" + "A" * (keys.KEY_LENGTH - 4), "malformed"),
        ("Bearer {fresh key}", "not valid"),
    ],
)
def test_bad_keys_get_401_problem(client, header, fragment):
    header = header.replace("{fresh key}", keys.new_key())
    response = client.get("/api/v1/generations", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert fragment in response.json()["detail"]


def test_revoked_key_401(alice_key):
    api_key, raw = alice_key
    assert apikey_revoke(api_key=api_key)
    assert not apikey_revoke(api_key=api_key)
    response = client_with(raw).get("/api/v1/generations")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_expired_key_401(user):
    api_key, raw = apikey_create(
        user=user,
        name="old",
        scopes=[Scope.GENERATIONS_READ],
        expires_at=timezone.now() + timedelta(days=1),
    )
    ApiKey.objects.filter(pk=api_key.pk).update(
        created_at=timezone.now() - timedelta(days=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    response = client_with(raw).get("/api/v1/generations")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_inactive_owner_key_401(alice_key, user):
    user.is_active = False
    user.save()
    response = client_with(alice_key[1]).get("/api/v1/generations")
    assert response.status_code == 401 and "suspended" in response.json()["detail"]


def test_wrong_scope_403(user):
    _, raw = apikey_create(user=user, name="read only", scopes=[Scope.GENERATIONS_READ])
    response = client_with(raw).post("/api/v1/generations", {"prompt": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "generations:write" in response.json()["detail"]


def test_unknown_scope_refused(user):
    with pytest.raises(ValueError, match="Scopes"):
        apikey_create(user=user, name="x", scopes=["everything"])


def test_no_credentials_401(client):
    response = client.get("/api/v1/generations")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_suspended_owner_key_401(alice_key, user):
    from moderation.services import user_suspend

    user_suspend(user=user, actor=None, reason="test", automatic=True)
    response = client_with(alice_key[1]).get("/api/v1/generations")
    assert response.status_code == 401 and "suspended" in response.json()["detail"]
