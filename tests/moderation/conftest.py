import pytest
from django.contrib.auth.models import Group
from django.test import Client

from generation.models import State
from moderation.policy import HOLD, Decision
from tests.factories import GenerationFactory, UserFactory
from workflows import review

from .fakeopenai import FakeOpenAI


@pytest.fixture
def moderator(db):
    user = UserFactory(email="mod@example.com", is_staff=True)
    user.groups.add(Group.objects.get(name="moderators"))
    return user


@pytest.fixture
def plain_staff(db):
    return UserFactory(email="staff@example.com", is_staff=True)


@pytest.fixture
def moderator_client(moderator):
    client = Client()
    client.force_login(moderator)
    return client


@pytest.fixture
def staff_client(plain_staff):
    client = Client()
    client.force_login(plain_staff)
    return client


def make_held(user, prompt="a spy assassinates the target on a rooftop", **decision):
    """A generation as generation_create leaves it for a hold: state held plus its case."""
    generation = GenerationFactory(user=user, state=State.HELD, queued_at=None, prompt=prompt)
    fields = {
        "action": HOLD,
        "category": "graphic_violence",
        "title": "Graphic violence",
        "explanation": "This request is waiting for a moderator.",
        "source": "rules",
        "detail": "graphic_violence: 'assassinat*'",
        **decision,
    }
    review.apply_decision(generation=generation, decision=Decision(**fields))
    return generation


@pytest.fixture(scope="session")
def fake_openai_server():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server, settings):
    """OpenAI moderation switched on and pointed at the fake server (real openai client)."""
    fake_openai_server.mode = "clean"
    fake_openai_server.requests.clear()
    settings.OPENAI_API_KEY = "sk-test-fake"
    settings.OPENAI_BASE_URL = fake_openai_server.base_url
    settings.OPENAI_MODERATION_TIMEOUT = 0.5
    return fake_openai_server
