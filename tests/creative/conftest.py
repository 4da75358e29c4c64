import pytest

from billing import plans, services
from tests.api.conftest import alice_api, alice_key, bob_api  # noqa: F401 - shared fixtures
from tests.moderation.conftest import fake_openai_server  # noqa: F401 - shared fixture


@pytest.fixture
def creator(user):
    """Alice on the Creator plan (three jobs at a time) with 1,000 credits."""
    account = services.account_for(user)
    services.plan_change(account=account, plan=plans.CREATOR, source="staff")
    services.credits_purchase(account=account, credits=1000, key="creative-test", reason="test")
    return user


@pytest.fixture
def queued_only(monkeypatch):
    """Renders stay queued (no inline render): for tests about holds before settlement."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
