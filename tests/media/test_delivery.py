"""Owner-only, short-lived signed media links, with Range, on the filesystem and on S3."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from generation import delivery
from generation.media import HIDDEN_PREFIX, store_video
from generation.models import Generation, State, Tier
from moderation.services import output_restore, output_take_down
from tests.api.conftest import client_with
from tests.factories import GenerationFactory, UserFactory
from tests.support.media import png_bytes, upload

from .helpers import follow, tiny_mp4

pytestmark = pytest.mark.django_db


def media_url(generation, kind, **query):
    url = reverse("generation_media", args=[generation.pk, kind])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


@pytest.fixture
def uploaded(alice_client):
    """Alice's image-to-video generation, created through the web form with an upload."""
    response = alice_client.post(
        reverse("generate"),
        {
            "endpoint": "fal-ai/pika/v2.2/image-to-video",
            "prompt": "it glows",
            "resolution": "720p",
            "duration": "5",
            "preset": "static",
            "aspect_ratio": "16:9",
            "image": upload("photo.png", png_bytes(400, 300)),
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return Generation.objects.get()


@pytest.fixture
def clip(user):
    """Alice's finished clip, stored through the same path the pipeline uses."""
    generation = GenerationFactory(user=user, state=State.FINALIZING)
    stored = store_video(generation, [tiny_mp4(frames=24)], declared_type="video/mp4")
    Generation.objects.filter(pk=generation.pk).update(
        state=State.SUCCEEDED, output=stored.video_name, poster=stored.poster_name
    )
    generation.refresh_from_db()
    return generation


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as handle:
        return handle.read()


def test_upload_is_stored_and_its_link_works_for_the_owner(storage, alice_client, uploaded):
    name = uploaded.inputs.get().file.name
    assert name.startswith(f"inputs/{uploaded.user_id}/") and name.endswith(".jpg")
    assert "photo" not in name  # a generated name, never the user's
    response = alice_client.get(media_url(uploaded, "input"))
    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    status, headers, body = follow(response["Location"])
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body == stored_bytes(name) and body[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("kind", ["video", "poster", "input"])
def test_another_user_gets_no_link(storage, bob_client, client, clip, kind):
    assert bob_client.get(media_url(clip, kind)).status_code == 404
    anonymous = client.get(media_url(clip, kind))
    assert anonymous.status_code == 302 and reverse("account_login") in anonymous["Location"]


def test_moderators_get_links_other_staff_do_not(storage, clip):
    staff = UserFactory(is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(media_url(clip, "video")).status_code == 404

    moderator = UserFactory(is_staff=True, is_superuser=True)  # has every permission
    moderator_client = Client()
    moderator_client.force_login(moderator)
    response = moderator_client.get(media_url(clip, "video"))
    assert response.status_code == 302
    assert follow(response["Location"])[0] == 200


def test_moderator_permission_is_what_counts(clip):
    try:
        permission = Permission.objects.get(
            content_type__app_label="moderation", codename="moderate"
        )
    except Permission.DoesNotExist:
        pytest.skip("the moderation app's permission is not installed")
    moderator = UserFactory(is_staff=True)
    moderator.user_permissions.add(permission)
    moderator_client = Client()
    moderator_client.force_login(moderator)
    assert moderator_client.get(media_url(clip, "poster")).status_code == 302


def test_video_and_poster_links_serve_the_right_types(storage, alice_client, clip):
    status, headers, body = follow(alice_client.get(media_url(clip, "video"))["Location"])
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    assert body == stored_bytes(clip.output.name) and body[4:8] == b"ftyp"
    assert headers["Content-Disposition"].startswith("inline")
    status, headers, body = follow(alice_client.get(media_url(clip, "poster"))["Location"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"

    download = alice_client.get(media_url(clip, "video", download=1))["Location"]
    status, headers, _ = follow(download)
    assert status == 200
    assert headers["Content-Disposition"] == f'attachment; filename="promptreel-{clip.pk}.mp4"'


def test_unfinished_outputs_have_no_link(storage, alice_client, user):
    queued = GenerationFactory(user=user)
    assert alice_client.get(media_url(queued, "video")).status_code == 404


def test_range_requests_for_the_video_player(storage, alice_client, clip):
    data = stored_bytes(clip.output.name)
    size = len(data)
    location = alice_client.get(media_url(clip, "video"))["Location"]

    status, headers, body = follow(location, {"Range": "bytes=0-99"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 0-99/{size}"
    assert headers["Content-Length"] == "100" and body == data[:100]
    assert headers["Accept-Ranges"] == "bytes"

    status, headers, body = follow(location, {"Range": "bytes=100-"})
    assert status == 206 and body == data[100:]
    assert headers["Content-Range"] == f"bytes 100-{size - 1}/{size}"

    status, headers, body = follow(location, {"Range": "bytes=-50"})
    assert status == 206 and body == data[-50:]

    status, headers, _ = follow(location, {"Range": f"bytes={size + 10}-"})
    assert status == 416
    if storage is None:  # S3 answers 416 with an XML error and no Content-Range
        assert headers["Content-Range"] == f"bytes */{size}"


def test_several_ranges_get_the_whole_file(alice_client, clip):
    data = stored_bytes(clip.output.name)
    location = alice_client.get(media_url(clip, "video"))["Location"]
    status, headers, body = follow(location, {"Range": "bytes=0-9,20-29"})
    assert status == 200 and body == data
    assert headers["Content-Length"] == str(len(data))


def test_signed_view_headers(alice_client, clip):
    location = alice_client.get(media_url(clip, "video"))["Location"]
    response = Client().get(location)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    etag = response["ETag"]
    assert Client().get(location, headers={"If-None-Match": etag}).status_code == 304
    # A stale If-Range means the client's copy changed: the whole file, not a range.
    stale = Client().get(location, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200


def test_filesystem_link_expires(alice_client, clip, settings, monkeypatch):
    location = alice_client.get(media_url(clip, "video"))["Location"]
    assert follow(location)[0] == 200
    later = time.time() + settings.SIGNED_URL_TTL + 1
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    status, response, body = follow(location)
    assert status == 403 and b"expired" in body


def test_s3_link_is_presigned_private_and_short_lived(s3, alice_client, clip, settings):
    location = alice_client.get(media_url(clip, "video"))["Location"]
    parts = urlsplit(location)
    assert location.startswith(s3.endpoint)
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == [str(settings.SIGNED_URL_TTL)]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Signature"]
    assert query["response-content-type"] == ["video/mp4"]
    # Objects carry no public grant: only the owner (our key) can read them.
    acl = s3.client.get_object_acl(Bucket=s3.bucket, Key=clip.output.name)
    assert [grant["Permission"] for grant in acl["Grants"]] == ["FULL_CONTROL"]
    assert all("URI" not in grant["Grantee"] for grant in acl["Grants"])
    head = s3.client.head_object(Bucket=s3.bucket, Key=clip.output.name)
    assert head["ContentType"] == "video/mp4"


def test_a_token_cannot_be_altered_or_reused_for_another_file(alice_client, clip):
    location = alice_client.get(media_url(clip, "video"))["Location"]
    token = location.rstrip("/").rsplit("/", 1)[1]
    payload, _, signature = token.rpartition(":")
    forged = delivery.signed_url("outputs/other.mp4", content_type="video/mp4")
    forged_payload = forged.rstrip("/").rsplit("/", 1)[1].rpartition(":")[0]
    # Another file's payload with this file's signature, and a flipped signature: refused.
    for bad in (f"{forged_payload}:{signature}", f"{payload}:{signature[:-2]}xx"):
        status, _, _ = follow(reverse("media_signed", args=[bad]))
        assert status == 403


def test_stored_names_are_never_overwritten(storage):
    first = default_storage.save("inputs/1/same.jpg", __import__("io").BytesIO(b"one"))
    second = default_storage.save("inputs/1/same.jpg", __import__("io").BytesIO(b"two"))
    assert first != second
    assert stored_bytes(first) == b"one" and stored_bytes(second) == b"two"


# --- a take-down ends access at once: old signed links, HD re-renders, remakes ------------


@pytest.fixture
def moderator(db):
    return UserFactory(email="mod@example.com", is_staff=True, is_superuser=True)


def take_down(generation, moderator, capture):
    with capture(execute=True):  # the objects are hidden once the take-down is committed
        assert output_take_down(generation=generation, moderator=moderator, reason="gore")


def test_links_signed_before_the_take_down_stop_working(
    storage, alice_client, clip, moderator, django_capture_on_commit_callbacks
):
    video = alice_client.get(media_url(clip, "video"))["Location"]
    poster = alice_client.get(media_url(clip, "poster"))["Location"]
    assert follow(video)[0] == 200 and follow(poster)[0] == 200
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    # Refused (filesystem: the view checks; S3: the object is no longer under that key).
    for link in (video, poster):
        assert follow(link)[0] in (403, 404)
    assert alice_client.get(media_url(clip, "video")).status_code == 404
    clip.refresh_from_db()
    assert clip.output.name.startswith(HIDDEN_PREFIX)
    assert default_storage.exists(clip.output.name)  # kept for moderators and an appeal


def test_api_links_signed_before_the_take_down_stop_working(
    alice_key, clip, moderator, django_capture_on_commit_callbacks
):
    api = client_with(alice_key[1])
    body = api.get(f"/api/v1/generations/{clip.pk}").json()
    link = body["output"]["video_url"].removeprefix("http://testserver")
    assert follow(link)[0] == 200
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    assert api.get(f"/api/v1/generations/{clip.pk}").json()["output"] is None
    status, headers, _ = follow(link)
    assert status == 404


def test_a_restore_brings_the_files_back(
    storage, alice_client, clip, moderator, django_capture_on_commit_callbacks
):
    name = clip.output.name
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert output_restore(generation=clip, moderator=moderator)
    clip.refresh_from_db()
    assert clip.output.name == name
    assert follow(alice_client.get(media_url(clip, "video"))["Location"])[0] == 200


def test_moderators_still_see_a_taken_down_clip(
    clip, moderator, client, django_capture_on_commit_callbacks
):
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    client.force_login(moderator)
    response = client.get(media_url(clip, "video"))
    assert response.status_code == 302
    assert response["Location"] == reverse("moderation_media", args=[clip.pk, "video"])
    assert client.get(response["Location"]).status_code == 200


def test_no_hd_render_of_a_taken_down_clip(
    alice_client, clip, moderator, django_capture_on_commit_callbacks
):
    Generation.objects.filter(pk=clip.pk).update(tier=Tier.PREVIEW, resolution="720p")
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    response = alice_client.post(reverse("billing_render_hd", args=[clip.pk]), follow=True)
    assert b"cannot be rendered again" in response.content
    assert Generation.objects.count() == 1


def test_no_remake_of_a_taken_down_clip_through_the_api(
    alice_key, clip, moderator, django_capture_on_commit_callbacks
):
    take_down(clip, moderator, django_capture_on_commit_callbacks)
    api = client_with(alice_key[1])
    same = {"endpoint": clip.endpoint_id, "prompt": clip.prompt, "seed": clip.seed}
    for resolution in ("720p", "1080p"):
        response = api.post("/api/v1/generations", {**same, "resolution": resolution}, "json")
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "moderation_taken_down"
        assert "seed" in response.json()["errors"]
    # Another seed is another video: allowed.
    response = api.post("/api/v1/generations", {**same, "seed": clip.seed + 1}, "json")
    assert response.status_code == 201, response.content
