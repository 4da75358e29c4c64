"""The check of finished videos (sampled frames → omni-moderation, real openai client against
the local fake) and the hold it leads to: kept, not shown, credits held until a moderator."""

import base64
import time
from io import BytesIO

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from billing import services as billing
from billing.models import LedgerEntry
from generation.models import Generation, State
from generation.probe import sample_frames
from moderation.models import ModerationCase
from moderation.output_check import output_check
from moderation.services import prompt_check
from tests.media.helpers import tiny_mp4
from tests.support.media import png_bytes
from workflows import review
from workflows.generations import generation_cancel, generation_create
from workflows.lifecycle import Actor
from workflows.tracking import track_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def frames(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(tiny_mp4(frames=24, size=(160, 96)))
    return sample_frames(str(path))


def _images_sent(fake):
    sent = []
    for request in fake.requests:
        items = request["body"]["input"]
        sent.append([item["type"] for item in items])
    return sent


def test_frames_are_first_middle_and_last(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(tiny_mp4(frames=12, size=(160, 96)))  # grey level 0, 20, ..., 220
    stills = sample_frames(str(path))
    levels = [Image.open(BytesIO(still)).convert("L").getpixel((80, 48)) for still in stills]
    assert len(stills) == 3 and all(still[:3] == b"\xff\xd8\xff" for still in stills)
    assert [round(level / 20) for level in levels] == [0, 6, 11]


def test_flagged_frames_hold_the_output(fake_openai, frames):
    fake_openai.mode = "flag-image:violence/graphic"  # the policy blocks this category...
    decision = output_check(frames=frames)
    assert decision.held and decision.source == "output"  # ...an output is held for a person
    assert decision.category == "graphic_violence", decision  # explainable: category and rule
    assert "violence/graphic" in decision.detail and "under review" in decision.explanation
    # One image per request, as the real API demands; each a JPEG data URI of our frames.
    assert _images_sent(fake_openai) == [["image_url"]] * 3
    urls = [r["body"]["input"][0]["image_url"]["url"] for r in fake_openai.requests]
    assert [base64.b64decode(url.split(",", 1)[1]) for url in urls] == frames
    assert all(url.startswith("data:image/jpeg;base64,") for url in urls)


def test_clean_frames_pass(fake_openai, frames):
    assert output_check(frames=frames).allowed
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize("mode", ["500", "sleep", "garbage"])
def test_openai_down_holds_the_output(fake_openai, frames, mode):
    fake_openai.mode = mode
    fake_openai.sleep_seconds = 1.0  # the client gives up after 0.5 s
    decision = output_check(frames=frames)
    assert decision.held and decision.source == "output"
    assert "error" in decision.detail


def test_without_a_key_the_output_is_not_sent_anywhere(settings, frames):
    settings.OPENAI_API_KEY = ""
    assert output_check(frames=frames).allowed


def test_several_input_images_are_checked_one_per_request(fake_openai, user):
    """omni-moderation refuses two images in one request (400 too_many_images): before this,
    every multi-image request was held as 'check unavailable'."""
    images = [png_bytes(colour=(200, 0, 0)), png_bytes(colour=(0, 200, 0))]
    assert prompt_check(user=user, prompt="two friends in a park", images=images).allowed
    assert _images_sent(fake_openai) == [["text", "image_url"], ["image_url"]]
    fake_openai.mode = "flag-image:violence"
    fake_openai.requests.clear()
    decision = prompt_check(user=user, prompt="two friends in a park", images=images)
    assert not decision.allowed and "violence" in decision.detail


# --- Through the pipeline: the offline backend renders, finalize checks, a moderator decides --
@pytest.fixture
def funded(user):
    billing.plan_change(account=billing.account_for(user), plan="creator", source="staff")
    billing.credits_adjust(user=user, amount=500, reason="test credits")
    return user


def _render(user, capture, *, fake=None, mode_after_create: str = "") -> Generation:
    with capture(execute=True):
        generation = generation_create(
            user=user,
            endpoint_id="fal-ai/pika/v2.2/text-to-video",
            inputs={"prompt": "a lighthouse at dusk", "resolution": "720p", "duration": 5},
        )
    if mode_after_create:
        fake.mode = mode_after_create
    for _ in range(100):
        with capture(execute=True):
            track_once()
        generation.refresh_from_db()
        if generation.state in (State.SUCCEEDED, State.HELD, State.FAILED):
            return generation
        time.sleep(0.02)
    raise AssertionError(f"still {generation.state}")


def _ledger(generation) -> list[str]:
    return sorted(
        LedgerEntry.objects.filter(generation_id=generation.pk).values_list("kind", flat=True)
    )


def test_flagged_output_is_held_unseen_until_a_moderator_approves(
    fake_openai, funded, moderator, alice_client, django_capture_on_commit_callbacks
):
    fake_openai.mode = "flag-image:violence"  # the text prompt passes, the frames do not
    generation = _render(funded, django_capture_on_commit_callbacks)
    assert generation.state == State.HELD, generation.error_message
    assert generation.output and generation.c2pa_manifest and generation.next_check_at is None
    assert _ledger(generation) == ["hold"], "credits stay held while a moderator decides"
    balance = billing.account_for(funded).balance
    case = ModerationCase.objects.get(generation=generation)
    assert case.source == "output" and case.status == ModerationCase.Status.OPEN

    page = alice_client.get(generation.get_absolute_url())
    assert b"under review" in page.content and b"<video" not in page.content
    video = reverse("generation_media", args=[generation.pk, "video"])
    assert alice_client.get(video).status_code == 404
    moderator_client = Client()
    moderator_client.force_login(moderator)
    assert moderator_client.get(video).status_code == 302, "moderators see what they judge"
    # The owner cannot cancel a rendered, held output to get the credits back.
    assert generation_cancel(generation=generation, actor=Actor(user=generation.user)) != "canceled"
    assert Generation.objects.get(pk=generation.pk).state == State.HELD

    with django_capture_on_commit_callbacks(execute=True):
        assert review.held_approve(generation=generation, moderator=moderator, note="fine")
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED and generation.finished_at
    assert _ledger(generation) == ["capture", "hold"]
    assert billing.account_for(funded).balance == balance
    assert alice_client.get(video).status_code == 302
    assert not review.held_approve(generation=generation, moderator=moderator)


def test_rejected_output_releases_its_credits(
    fake_openai, funded, moderator, django_capture_on_commit_callbacks
):
    before = billing.account_for(funded).balance
    # The prompt passes; OpenAI is down when the video is finished: fail closed, held.
    generation = _render(
        funded, django_capture_on_commit_callbacks, fake=fake_openai, mode_after_create="500"
    )
    assert generation.state == State.HELD and generation.output
    assert "error" in ModerationCase.objects.get(generation=generation).detail
    assert review.held_reject(generation=generation, moderator=moderator, category="hate")
    generation.refresh_from_db()
    assert generation.state == State.BLOCKED
    assert _ledger(generation) == ["hold", "release"]
    assert billing.account_for(funded).balance == before


def test_no_frames_to_judge_holds(fake_openai):
    decision = output_check(frames=[])
    assert decision.held and "none were sampled" in decision.detail
    assert fake_openai.requests == []
