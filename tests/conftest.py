import uuid

import pytest
from django.test import Client
from django_q.conf import Conf

from api import ratelimit
from generation.polling import forget_typical_run_times
from tests.factories import UserFactory
from workflows.circuit import circuit_forget
from workflows.notifications import outcome_notice_forget


@pytest.fixture(autouse=True)
def _isolated_files_and_tasks(settings, tmp_path, monkeypatch):
    """Every test gets its own media folder, and django-q tasks run inline (sync mode)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LOCAL_RENDER_DIR = tmp_path / "local-provider"
    settings.LOCAL_QUEUE_SECONDS = 0
    monkeypatch.setattr(Conf, "SYNC", True)
    monkeypatch.setattr(ratelimit, "NAMESPACE", f"test-{uuid.uuid4().hex}")
    forget_typical_run_times()  # each test's database starts with no history of runs
    circuit_forget()  # and no provider circuit state cached from another test
    if "redis" in settings.CACHES["default"]["BACKEND"].lower():
        # Nor a shut gate of the outcome emails' sender (the database cache's rows roll back
        # with each test by themselves).
        outcome_notice_forget()


@pytest.fixture
def user(db):
    return UserFactory(email="alice@example.com")


@pytest.fixture
def other_user(db):
    return UserFactory(email="bob@example.com")


@pytest.fixture
def alice_client(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def bob_client(other_user):
    client = Client()
    client.force_login(other_user)
    return client
