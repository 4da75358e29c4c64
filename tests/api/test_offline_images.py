"""The offline renderer with several input images (Scenes, Keyframes), through the API."""

import av
import pytest
from django.core.files.storage import default_storage

from billing import services as billing
from generation.models import Generation, State
from tests.generation.test_end_to_end import drive_until_terminal
from tests.support.media import png_bytes, upload


@pytest.mark.django_db
def test_scenes_offline_show_every_image_in_order(
    alice_api, user, settings, django_capture_on_commit_callbacks
):
    """The offline renderer goes from the first image to the last (a user trying Scenes or
    Keyframes offline saw only the first)."""
    settings.TRACK_POLL_MIN_SECONDS = 0
    billing.credits_purchase(account=billing.account_for(user), credits=1000, key="t", reason="t")
    colours = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.post(
            "/api/v1/generations",
            {
                "endpoint": "fal-ai/pika/v2.2/pikascenes",
                "prompt": "a walk through the seasons",
                "resolution": "720p",
                "images": [
                    upload(f"{i}.png", png_bytes(320, 180, colour))
                    for i, colour in enumerate(colours)
                ],
            },
            format="multipart",
        )
    assert response.status_code == 201, response.content.decode()[:2000]
    drive_until_terminal(django_capture_on_commit_callbacks)
    generation = Generation.objects.get()
    assert generation.state == State.SUCCEEDED, generation.error_message
    with default_storage.open(generation.output.name) as video, av.open(video) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    dominant = [int(frame.reshape(-1, 3).mean(axis=0).argmax()) for frame in decoded]
    assert dominant[0] == 0 and dominant[len(dominant) // 2] == 1 and dominant[-1] == 2
