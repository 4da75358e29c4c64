"""Web form → task → tracker → finalize → a playable file, through the real code paths."""

import time

import av
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django_q.conf import Conf

from generation.models import Generation, State
from tests.support.media import png_bytes, stored_credentials, upload
from tests.support.processes import output_of, process_env, running, unique_queue_name
from workflows.tracking import track_once


def drive_until_terminal(capture, rounds: int = 50) -> None:
    """What the tracker process does, step by step, with on-commit tasks run inline."""
    for _ in range(rounds):
        with capture(execute=True):
            track_once()
        if not Generation.objects.exclude(
            state__in=[State.SUCCEEDED, State.FAILED, State.CANCELED]
        ).exists():
            return
        time.sleep(0.05)


@pytest.mark.django_db
def test_text_prompt_becomes_a_playable_video(
    alice_client, settings, django_capture_on_commit_callbacks
):
    settings.TRACK_POLL_MIN_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("generate"),
            {
                "endpoint": "fal-ai/pika/v2.2/text-to-video",
                "prompt": "a red fox in snow",
                "aspect_ratio": "16:9",
                "resolution": "720p",
                "duration": "5",
                "preset": "dolly_in",
            },
        )
    generation = Generation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == generation.get_absolute_url()
    assert generation.state == State.IN_QUEUE  # submitted inline, the tracker takes it on

    drive_until_terminal(django_capture_on_commit_callbacks)

    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert (generation.video_width, generation.video_height) == (1280, 720)
    assert generation.video_codec == "h264"
    assert abs(generation.video_duration - 5) <= 1 / 24
    assert generation.arguments["prompt"] == "a red fox in snow, slow dolly-in camera"
    for stamp in ("queued_at", "submitting_at", "in_queue_at", "finalizing_at", "finished_at"):
        assert getattr(generation, stamp) is not None, stamp
    with default_storage.open(generation.output.name) as video, av.open(video) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert default_storage.exists(generation.poster.name)
    credentials = stored_credentials(generation.output.name)
    assert credentials.valid and credentials.ai_generated
    assert credentials.label == generation.c2pa_manifest
    assert credentials.software_agent == "fal-ai/pika/v2.2/text-to-video"

    page = alice_client.get(generation.get_absolute_url())
    assert b"<video" in page.content and b"AI-generated" in page.content
    assert b"Content credentials (C2PA)" in page.content
    # The owner-checked view answers with a short-lived signed link (tests/media covers it).
    video = alice_client.get(
        reverse("generation_media", args=[generation.pk, "video"]), follow=True
    )
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"ftyp" in b"".join(video.streaming_content)[:64]


@pytest.mark.django_db
def test_uploaded_image_is_animated(alice_client, settings, django_capture_on_commit_callbacks):
    settings.TRACK_POLL_MIN_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            reverse("generate"),
            {
                "endpoint": "fal-ai/pika/v2.2/image-to-video",
                "prompt": "it glows",
                "resolution": "720p",
                "duration": "5",
                "preset": "pan_left",
                "aspect_ratio": "16:9",
                "image": upload("photo.png", png_bytes(400, 400, (20, 40, 220))),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    drive_until_terminal(django_capture_on_commit_callbacks)
    generation = Generation.objects.get()
    assert generation.state == State.SUCCEEDED, generation.error_message
    # A square input gives a square video: the output follows the image, not a default ratio.
    assert generation.video_width == generation.video_height == 720
    with default_storage.open(generation.output.name) as video, av.open(video) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    red, green, blue = frame.reshape(-1, 3).mean(axis=0)
    assert blue > 150 and red < 80, "frames must come from the blue input image"


@pytest.mark.django_db
def test_form_errors_create_nothing(alice_client):
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": "fal-ai/pika/v2.2/image-to-video",
            "prompt": "no image given",
            "resolution": "720p",
            "duration": "5",
            "preset": "static",
            "aspect_ratio": "16:9",
        },
    )
    assert response.status_code == 400
    assert b"needs exactly 1 image" in response.content
    assert not Generation.objects.exists()


@pytest.mark.django_db
def test_not_an_image_is_refused_clearly(alice_client):
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": "fal-ai/pika/v2.2/image-to-video",
            "prompt": "x",
            "resolution": "720p",
            "duration": "5",
            "preset": "static",
            "aspect_ratio": "16:9",
            "image": upload("cat.png", b"<html>not a picture</html>"),
        },
    )
    assert response.status_code == 400
    assert b"JPEG" in response.content
    assert not Generation.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_qcluster_and_tracker_finish_a_web_request(alice_client, tmp_path, monkeypatch):
    """The product's own processes, started as in `./dev.sh run`, do the work."""
    queue = unique_queue_name()
    monkeypatch.setattr(Conf, "SYNC", False)
    # The queue's name also salts django-q's task signatures: both ends must agree on it.
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)
    monkeypatch.setattr(Conf, "PREFIX", queue)
    env = process_env(Q_QUEUE_NAME=queue, Q_WORKERS=1)
    with running(["qcluster"], ["track"], env=env, log_dir=tmp_path):
        response = alice_client.post(
            reverse("generate"),
            {
                "endpoint": "fal-ai/pika/v2.2/text-to-video",
                "prompt": "a lighthouse at dusk",
                "aspect_ratio": "9:16",
                "resolution": "720p",
                "duration": "5",
                "preset": "tilt_up",
            },
        )
        assert response.status_code == 302
        generation = Generation.objects.get()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            generation.refresh_from_db()
            if generation.is_terminal:
                break
            time.sleep(0.25)
    assert generation.state == State.SUCCEEDED, (generation.state, output_of(tmp_path)[-3000:])
    assert (generation.video_width, generation.video_height) == (720, 1280)
    assert default_storage.exists(generation.output.name)
    assert default_storage.exists(generation.poster.name)
