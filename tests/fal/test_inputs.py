"""Input images on the fal backend: fal's upload (filesystem storage) or presigned S3 URLs.

The real fal-client uploads to the fake fal (its upload hosts point there) and the fake, like
fal's runner, downloads every input URL a submit names, so these tests prove fal could read it.
"""

import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from generation.backends import fal as fal_backend
from generation.models import Generation, State
from tests.support.media import png_bytes, upload
from workflows.generations import generation_create
from workflows.tracking import track_once

from .conftest import run_submit, track_until_terminal

pytestmark = pytest.mark.django_db

FORM = {
    "endpoint": "fal-ai/pika/v2.2/image-to-video",
    "prompt": "the sea breathes",
    "resolution": "720p",
    "duration": "5",
    "preset": "static",
    "aspect_ratio": "16:9",
}
SCENES = "fal-ai/pika/v2.2/pikascenes"


def create_from_form(client, capture, *, execute: bool = True) -> Generation:
    """An image-to-video generation made through the web form (submitted inline)."""
    with capture(execute=execute):
        response = client.post(
            reverse("generate"), {**FORM, "image": upload("photo.png", png_bytes())}
        )
    assert response.status_code == 302, response.content[:500]
    return Generation.objects.get()


def stored_bytes(generation: Generation) -> list[bytes]:
    out = []
    for item in generation.inputs.all():
        with default_storage.open(item.file.name, "rb") as stream:
            out.append(stream.read())
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_due(generation: Generation) -> None:
    Generation.objects.filter(pk=generation.pk).update(next_check_at=generation.created_at)


# ------------------------------------------------------------------------ fal's upload
def test_uploaded_image_reaches_fal_and_the_job_succeeds(
    fake_fal, alice_client, django_capture_on_commit_callbacks
):
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE, generation.error_message
    (image,) = stored_bytes(generation)
    (item,) = generation.inputs.all()

    (token,) = fake_fal.recorded("upload_token")
    assert token.header("authorization") == "Key fake-key-id:fake-key-secret"
    (cdn,) = fake_fal.recorded("upload")
    assert cdn.status == 200 and cdn.body == image, "fal received the stored bytes"
    assert cdn.header("content-type") == item.content_type
    assert cdn.header("x-fal-file-name") == item.file.name.rsplit("/", 1)[-1]
    (uploaded,) = fake_fal.uploads
    assert uploaded.via == "cdn" and uploaded.data == image

    (submit,) = fake_fal.submits()
    assert submit.json["image_url"] == uploaded.url, "the URL fal's upload returned"
    assert generation.arguments["image_url"] == uploaded.url, "recorded as sent"
    (fetched,) = fake_fal.input_fetches
    assert (fetched.field, fetched.url, fetched.status) == ("image_url", uploaded.url, 200)
    assert fetched.sha256 == sha256(image)

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert default_storage.exists(generation.output.name)
    assert len(fake_fal.recorded("upload")) == 1 and len(fake_fal.submits()) == 1


def test_cdn_upload_failure_falls_back_to_fal_storage(
    fake_fal, alice_client, django_capture_on_commit_callbacks
):
    fake_fal.fail_next("upload", 1, status=500, error_type=None, detail="CDN unavailable")
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE, generation.error_message
    (image,) = stored_bytes(generation)

    assert [r.status for r in fake_fal.recorded("upload")] == [500]
    (put,) = fake_fal.recorded("upload_put")
    assert put.body == image
    (uploaded,) = fake_fal.uploads
    assert uploaded.via == "storage"
    assert fake_fal.submits()[0].json["image_url"] == uploaded.url
    assert fake_fal.input_fetches[0].ok

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.attempts == 1


@pytest.mark.parametrize(
    "failures",
    [
        pytest.param(["upload", "upload_initiate"], id="cdn-and-storage-503"),
        pytest.param(["upload", "upload_put"], id="cdn-and-signed-put-503"),
        # fal-client fetches the CDN token with plain httpx, outside its fallback: httpx's
        # own HTTPStatusError reaches us. It must be a counted retry, not a crashed task.
        pytest.param(["upload_token"], id="cdn-token-503"),
    ],
)
def test_upload_failure_is_retried_with_backoff(
    fake_fal, alice_client, django_capture_on_commit_callbacks, failures
):
    for kind in failures:
        fake_fal.fail_next(kind, 1, status=503)
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)

    assert generation.state == State.QUEUED, "back in the queue, not stuck in submitting"
    assert generation.error_code == "upload_failed"
    assert generation.error_message.startswith("Uploading the input image to fal failed")
    assert generation.attempts == 1
    assert generation.next_check_at > generation.updated_at, "retried after a back-off"
    assert fake_fal.submits() == [], "nothing was sent to fal without its image"

    make_due(generation)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert generation.attempts == 2
    (submit,) = fake_fal.submits()
    assert submit.json["image_url"] == fake_fal.uploads[-1].url


def test_upload_failures_give_up_after_max_attempts(
    fake_fal, alice_client, settings, django_capture_on_commit_callbacks
):
    settings.GENERATION_MAX_ATTEMPTS = 2
    fake_fal.fail_next("upload_token", 5, status=503)
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)
    assert generation.state == State.QUEUED
    make_due(generation)
    with django_capture_on_commit_callbacks(execute=True):
        track_once()
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.error_code == "upload_failed"
    assert "gave up after 2 attempts" in generation.error_message
    assert fake_fal.submits() == []
    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "failed"


def test_upload_refused_by_fal_fails_at_once(
    fake_fal, alice_client, django_capture_on_commit_callbacks
):
    too_big = {"detail": "File too large"}
    fake_fal.fail_next("upload", 1, status=413, error_type=None, mode="raw", body=too_big)
    fake_fal.fail_next("upload_initiate", 1, status=413, error_type=None, mode="raw", body=too_big)
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)
    assert generation.state == State.FAILED
    assert generation.error_code == "upload_failed"
    assert generation.error_message == "Uploading the input image to fal failed: File too large"
    assert generation.attempts == 1 and fake_fal.submits() == []


def test_missing_input_file_fails_clearly(
    fake_fal, alice_client, django_capture_on_commit_callbacks
):
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks, execute=False)
    default_storage.delete(generation.inputs.get().file.name)
    generation = run_submit(generation, django_capture_on_commit_callbacks)
    assert generation.state == State.FAILED
    assert generation.error_code == "input_missing"
    assert fake_fal.uploads == [] and fake_fal.submits() == []


# ------------------------------------------------------------------------ presigned S3
def test_presigned_s3_input_is_read_by_fal(
    fake_fal, s3, alice_client, django_capture_on_commit_callbacks
):
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks)
    assert generation.state == State.IN_QUEUE, generation.error_message
    (item,) = generation.inputs.all()
    stored = s3.client.get_object(Bucket=s3.bucket, Key=item.file.name)["Body"].read()

    (submit,) = fake_fal.submits()
    url = submit.json["image_url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3.endpoint
    assert parts.path == f"/{s3.bucket}/{item.file.name}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == [str(fal_backend.PRESIGNED_INPUT_TTL)]
    assert "X-Amz-Signature" in query, "presigned: fal needs no credentials of ours"
    unsigned = httpx.get(f"{s3.endpoint}/{s3.bucket}/{item.file.name}")
    assert unsigned.status_code == 403, "the object is private: only the presigned URL reads it"
    assert fake_fal.uploads == [] and fake_fal.recorded("upload_token") == []

    (fetched,) = fake_fal.input_fetches
    assert (fetched.url, fetched.status) == (url, 200)
    assert fetched.sha256 == sha256(stored), "fal read our stored input"

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message
    assert s3.client.head_object(Bucket=s3.bucket, Key=generation.output.name)


def test_input_fal_cannot_read_fails_with_fals_message(
    fake_fal, s3, alice_client, django_capture_on_commit_callbacks
):
    generation = create_from_form(alice_client, django_capture_on_commit_callbacks, execute=False)
    s3.client.delete_object(Bucket=s3.bucket, Key=generation.inputs.get().file.name)
    run_submit(generation, django_capture_on_commit_callbacks)
    (fetched,) = fake_fal.input_fetches
    assert fetched.status == 404

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    assert generation.error_code == "provider_validation"
    assert generation.error_message.startswith("image_url: Failed to download the file")
    assert len(fake_fal.submits()) == 1, "a 422 is not retried"


# ------------------------------------------------------------------------ several images
def test_pikascenes_sends_every_image_in_order(
    fake_fal, storage, user, settings, django_capture_on_commit_callbacks
):
    settings.VIDEO_BACKEND = "fal"
    images = [png_bytes(colour=(200, 30, 30)), png_bytes(colour=(30, 200, 30))]
    with django_capture_on_commit_callbacks(execute=True):
        generation = generation_create(
            user=user,
            endpoint_id=SCENES,
            inputs={"prompt": "a picnic", "resolution": "720p", "duration": 5},
            images=images,
        )
    generation.refresh_from_db()
    assert generation.state == State.IN_QUEUE, generation.error_message
    stored = stored_bytes(generation)
    assert len(stored) == 2

    (submit,) = fake_fal.submits()
    urls = submit.json["image_urls"]
    assert len(urls) == 2 and "image_url" not in submit.json
    assert generation.arguments["image_urls"] == urls
    fetched = fake_fal.input_fetches
    assert [(f.field, f.url, f.status) for f in fetched] == [
        ("image_urls[0]", urls[0], 200),
        ("image_urls[1]", urls[1], 200),
    ]
    assert [f.sha256 for f in fetched] == [sha256(data) for data in stored], "in input order"
    if storage is None:
        assert [u.url for u in fake_fal.uploads] == urls
        assert len(fake_fal.recorded("upload_token")) == 1, "one CDN token for both uploads"
    else:
        assert fake_fal.uploads == []
        assert all(url.startswith(f"{storage.endpoint}/{storage.bucket}/") for url in urls)

    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def _api(user):
    from api.models import Scope
    from api.services import apikey_create
    from tests.api.conftest import client_with

    return client_with(apikey_create(user=user, name="script", scopes=list(Scope.values))[1])


def _colour(data: bytes) -> tuple:
    """Which of COLOURS the image is (stored images are re-encoded, so not to the unit)."""
    import io

    from PIL import Image

    pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((5, 5))
    return min(COLOURS, key=lambda c: sum(abs(a - b) for a, b in zip(c, pixel, strict=True)))


@pytest.mark.parametrize("form_name", ["image", "images"])
def test_api_pikascenes_with_three_uploads_sends_all_three_in_order(
    fake_fal, user, form_name, django_capture_on_commit_callbacks
):
    files = [upload(f"{i}.png", png_bytes(colour=c)) for i, c in enumerate(COLOURS)]
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(user).post(
            "/api/v1/generations",
            {"endpoint": SCENES, "prompt": "a picnic", "resolution": "720p", form_name: files},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.state == State.IN_QUEUE, generation.error_message
    stored = stored_bytes(generation)
    assert [_colour(data) for data in stored] == COLOURS, "stored in the order given"

    (submit,) = fake_fal.submits()
    urls = submit.json["image_urls"]
    assert len(urls) == 3
    fetched = fake_fal.input_fetches
    assert [f.field for f in fetched] == ["image_urls[0]", "image_urls[1]", "image_urls[2]"]
    assert [f.url for f in fetched] == urls
    assert [f.sha256 for f in fetched] == [sha256(data) for data in stored], "fal got them in order"


ADDITIONS = "fal-ai/pika/v2/pikadditions"
SWAPS = "fal-ai/pika/v2/pikaswaps"


@pytest.fixture
def video_link(fake_fal, fetch_options):
    """An https link to a real MP4, served by a host the test lets safe_fetch reach."""
    from tests.fakefal import default_mp4

    fetch_options.update(
        ip_check=lambda ip: None, allowed_ports={fake_fal.port}, verify=fake_fal.ca_bundle_path
    )
    return fake_fal.add_file("input-clip.mp4", default_mp4())


def _sent_video(fake_fal, generation):
    (submit,) = fake_fal.submits()
    fetched = {f.field: f for f in fake_fal.input_fetches}
    video = fetched["video_url"]
    assert video.url == submit.json["video_url"] and video.ok
    (item,) = generation.inputs.filter(kind="video")
    with default_storage.open(item.file.name, "rb") as stream:
        assert video.sha256 == sha256(stream.read()), "fal read our stored copy"
    assert (item.content_type, item.width, item.height) == ("video/mp4", 320, 180)
    return submit


def _sent_image(fake_fal, submit) -> None:
    image = {f.field: f for f in fake_fal.input_fetches}["image_url"]
    assert image.url == submit.json["image_url"] and image.ok


def _post_swaps(user, settings, capture, fields: dict):
    """POST a Pikaswaps generation: its price is unpublished, so an override prices it."""
    from generation import catalogue

    settings.FAL_PRICE_OVERRIDES = '{"fal-ai/pika/v2/pikaswaps": {"*": {"*": "0.50"}}}'
    catalogue._price_overrides.cache_clear()
    try:
        with capture(execute=True):
            return _api(user).post(
                "/api/v1/generations",
                {
                    "endpoint": SWAPS,
                    "modify_region": "the red car",
                    "prompt": "a blue bus",
                    **fields,
                },
                format="multipart",
            )
    finally:
        catalogue._price_overrides.cache_clear()


def test_api_pikadditions_with_a_video_link_and_an_image(
    fake_fal, fetch_options, video_link, user, storage, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _api(user).post(
            "/api/v1/generations",
            {
                "endpoint": ADDITIONS,
                "prompt": "a cat walks in",
                "video_url": video_link,
                "image": upload("cat.png", png_bytes()),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    assert generation.state == State.IN_QUEUE, generation.error_message
    submit = _sent_video(fake_fal, generation)
    assert submit.json["video_url"] != video_link, "our copy, not the user's link"
    assert "image_url" in submit.json
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


def test_api_pikaswaps_with_an_uploaded_video(
    fake_fal, user, settings, django_capture_on_commit_callbacks
):
    from tests.fakefal import default_mp4

    video = upload("clip.mp4", default_mp4(), "video/mp4")
    response = _post_swaps(user, settings, django_capture_on_commit_callbacks, {"video": video})
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    submit = _sent_video(fake_fal, generation)
    assert submit.json["modify_region"] == "the red car"
    assert "image_url" not in submit.json


def test_api_pikadditions_with_an_uploaded_video_and_an_image(
    fake_fal, user, storage, django_capture_on_commit_callbacks
):
    from tests.fakefal import default_mp4

    with django_capture_on_commit_callbacks(execute=True):
        response = _api(user).post(
            "/api/v1/generations",
            {
                "endpoint": ADDITIONS,
                "prompt": "a cat walks in",
                "video": upload("clip.mp4", default_mp4(), "video/mp4"),
                "image": upload("cat.png", png_bytes()),
            },
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    submit = _sent_video(fake_fal, generation)
    _sent_image(fake_fal, submit)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


def test_api_pikaswaps_with_a_video_link_and_an_image(
    fake_fal, fetch_options, video_link, user, settings, django_capture_on_commit_callbacks
):
    response = _post_swaps(
        user,
        settings,
        django_capture_on_commit_callbacks,
        {"video_url": video_link, "image": upload("bus.png", png_bytes())},
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get()
    submit = _sent_video(fake_fal, generation)
    assert submit.json["video_url"] != video_link, "our copy, not the user's link"
    assert submit.json["modify_region"] == "the red car"
    _sent_image(fake_fal, submit)
    track_until_terminal(django_capture_on_commit_callbacks)
    generation.refresh_from_db()
    assert generation.state == State.SUCCEEDED, generation.error_message


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"video_url": "https://127.0.0.1/clip.mp4"}, "video_url", ""),
        ({"video_url": "http://example.com/clip.mp4"}, "video_url", ""),
        ({"video": upload("x.mp4", png_bytes(), "video/mp4")}, "video", "MP4"),
        ({}, "video", "needs an input video"),
    ],
)
def test_api_bad_input_videos_are_refused_naming_the_field(
    fake_fal, user, payload, field, fragment
):
    body = {"endpoint": ADDITIONS, "image": upload("cat.png", png_bytes()), **payload}
    response = _api(user).post("/api/v1/generations", body, format="multipart")
    assert response.status_code == 400, response.json()
    assert fragment in response.json()["errors"][field]
    assert not Generation.objects.exists() and fake_fal.submits() == []


def test_api_input_video_over_the_length_cap_is_refused(fake_fal, user, settings):
    from tests.fakefal import default_mp4

    settings.INPUT_VIDEO_MAX_SECONDS = 0
    body = {
        "endpoint": ADDITIONS,
        "image": upload("cat.png", png_bytes()),
        "video": upload("clip.mp4", default_mp4(), "video/mp4"),
    }
    response = _api(user).post("/api/v1/generations", body, format="multipart")
    assert response.status_code == 400
    assert "the limit is 0 s" in response.json()["errors"]["video"]
