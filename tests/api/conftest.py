import pytest
from rest_framework.test import APIClient

from api.models import Scope
from api.services import apikey_create

ALL_SCOPES = list(Scope.values)


def client_with(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def alice_key(user):
    return apikey_create(user=user, name="alice's script", scopes=ALL_SCOPES)


@pytest.fixture
def alice_api(alice_key):
    return client_with(alice_key[1])


@pytest.fixture
def bob_api(other_user):
    return client_with(apikey_create(user=other_user, name="bob", scopes=ALL_SCOPES)[1])
