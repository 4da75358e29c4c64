"""Property-based run of the whole public API against its own OpenAPI schema."""

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.models import Scope
from api.services import apikey_create


def _load():
    document = json.loads(
        json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str)
    )
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load()


@pytest.fixture
def bearer(user, settings):
    settings.API_REQUESTS_PER_MINUTE = 10_000
    _, raw = apikey_create(user=user, name="schemathesis", scopes=list(Scope.values))
    # Requests go through the WSGI app directly, not Django's test client: like that client,
    # keep the per-request connection cleanup from closing the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {raw}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_schema_and_never_errors(case, bearer):
    case.call_and_validate(headers=bearer, checks=[not_a_server_error, response_schema_conformance])


@pytest.mark.django_db
def test_schema_is_served_publicly(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/api/v1/generations" in paths and "/api/v1/generations/{id}/cancel" in paths
