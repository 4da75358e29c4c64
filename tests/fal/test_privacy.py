"""What fal may keep of our requests: X-Fal-Store-IO and the media lifetime, as sent by the
real fal-client to the fake (which honours them the way fal documents)."""

import json
import time

import pytest
from django.core.files.storage import default_storage

from generation.models import State
from tests.support.media import png_bytes
from workflows.generations import generation_create

from .conftest import make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db


def test_submit_asks_fal_to_keep_nothing_and_to_expire_the_video(
    fake_fal, user, django_capture_on_commit_callbacks
):
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    (submit,) = fake_fal.submits()
    assert submit.header("x-fal-store-io") == "0"
    lifecycle = json.loads(submit.header("x-fal-object-lifecycle-preference"))
    assert lifecycle == {"expiration_duration_seconds": 3600}
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


def test_uploaded_inputs_expire_but_outlive_a_long_queue(
    fake_fal, user, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation_create(
            user=user,
            endpoint_id="fal-ai/pika/v2.2/image-to-video",
            inputs={"prompt": "waves"},
            images=[png_bytes()],
        )
    (cdn,) = fake_fal.recorded("upload")
    assert json.loads(cdn.header("x-fal-object-lifecycle")) == {
        "expiration_duration_seconds": 6 * 3600
    }


def test_both_can_be_switched_off(fake_fal, user, settings, django_capture_on_commit_callbacks):
    settings.FAL_STORE_IO = True
    settings.FAL_MEDIA_EXPIRATION_SECONDS = 0
    run_submit(make_generation(user), django_capture_on_commit_callbacks)
    (submit,) = fake_fal.submits()
    assert submit.header("x-fal-store-io") is None
    assert submit.header("x-fal-object-lifecycle-preference") is None


def test_the_video_is_copied_before_fal_deletes_it_and_is_gone_at_fal_after(
    fake_fal, user, settings, django_capture_on_commit_callbacks
):
    settings.FAL_MEDIA_EXPIRATION_SECONDS = 1
    generation = run_submit(make_generation(user), django_capture_on_commit_callbacks)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert default_storage.exists(generation.output.name), "our copy"
    video_url = json.loads(fake_fal.webhook_body(generation.provider_request_id))["payload"][
        "video"
    ]["url"]
    deadline = time.monotonic() + 3
    with fake_fal.http_client() as http:
        while http.get(video_url).status_code != 404:
            assert time.monotonic() < deadline, "fal's copy outlived its lifetime"
            time.sleep(0.1)
