"""The real openai client against a local fake moderation server: results map to the policy,
and anything that goes wrong holds the request (fail closed)."""

import base64
import io
import time

import pytest
from PIL import Image

from moderation.services import prompt_check

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_clean_prompt_and_image_are_allowed_and_sent_as_the_api_expects(fake_openai, user):
    image = _png()
    decision = prompt_check(user=user, prompt="a red fox in snow", images=[image])
    assert decision.allowed
    [request] = fake_openai.requests
    assert request["path"] == "/v1/moderations"
    assert request["auth"] == "Bearer sk-test-fake"
    body = request["body"]
    assert body["model"] == "omni-moderation-latest"
    text, picture = body["input"]
    assert text == {"type": "text", "text": "a red fox in snow"}
    assert picture["type"] == "image_url"
    url = picture["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == image


@pytest.mark.parametrize(
    ("flagged", "action", "category"),
    [
        ("sexual/minors", "block", "minors_sexual"),
        ("violence/graphic", "block", "graphic_violence"),
        ("self-harm/instructions", "block", "self_harm"),
        ("hate", "hold", "hate"),
        ("illicit", "hold", "illegal_activity"),
        ("sexual", "hold", ""),  # flagged but not mapped to a policy: a moderator decides
        ("harassment,hate/threatening", "block", "hate"),
    ],
)
def test_flagged_categories_map_to_the_policy(fake_openai, user, flagged, action, category):
    fake_openai.mode = f"flag:{flagged}"
    decision = prompt_check(user=user, prompt="an innocent-looking prompt", images=[])
    assert (decision.action, decision.category, decision.source) == (action, category, "openai")
    assert decision.explanation
    assert flagged.split(",")[0] in decision.detail


@pytest.mark.parametrize("mode", ["500", "sleep", "garbage"])
def test_any_failure_holds_for_review(fake_openai, user, mode):
    fake_openai.sleep_seconds = 1.5
    fake_openai.mode = mode
    started = time.monotonic()
    decision = prompt_check(user=user, prompt="a red fox in snow", images=[])
    assert decision.held
    assert decision.source == "error"
    assert "could not run" in decision.explanation
    assert time.monotonic() - started < 1.4  # the timeout (0.5 s) cut it short, no retries
    assert len(fake_openai.requests) == 1


def test_unreachable_service_holds(fake_openai, user, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # discard port: connection refused
    assert prompt_check(user=user, prompt="a red fox", images=[]).held


def test_rules_block_without_asking_openai(fake_openai, user):
    decision = prompt_check(user=user, prompt="a naked child", images=[])
    assert decision.blocked and decision.source == "rules"
    assert fake_openai.requests == []


def test_rules_hold_is_raised_to_a_block_by_openai(fake_openai, user):
    fake_openai.mode = "flag:violence/graphic"
    decision = prompt_check(user=user, prompt="a war scene with corpses", images=[])
    assert decision.blocked and decision.source == "openai"


def test_without_a_key_only_the_rules_run(settings, user, fake_openai_server):
    settings.OPENAI_API_KEY = ""
    fake_openai_server.requests.clear()
    assert prompt_check(user=user, prompt="a red fox", images=[]).allowed
    assert prompt_check(user=user, prompt="a war scene with corpses", images=[]).held
    assert fake_openai_server.requests == []
