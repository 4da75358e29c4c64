"""Copying the provider's video into our storage: capped, checked, labelled, probed."""

import os
import tempfile

import pytest
from django.core.files.storage import default_storage

from generation.media import BadVideo, disclosure_tags, is_disclosed, store_video
from generation.probe import probe_video
from tests.factories import GenerationFactory

from .helpers import tiny_mp4

pytestmark = pytest.mark.django_db


@pytest.fixture
def generation(user):
    return GenerationFactory(user=user)


def chunked(data: bytes, size: int = 1000):
    return (data[index : index + size] for index in range(0, len(data), size))


def probe_stored(name: str):
    with default_storage.open(name, "rb") as handle, tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "copy.mp4")
        with open(path, "wb") as out:
            for chunk in iter(lambda: handle.read(65536), b""):
                out.write(chunk)
        return probe_video(path)


def all_names() -> list[str]:
    names = []
    for prefix in ("outputs", "posters"):
        try:
            directories, _ = default_storage.listdir(prefix)
        except FileNotFoundError:
            continue
        for directory in directories:
            names += default_storage.listdir(f"{prefix}/{directory}")[1]
    return names


def test_the_copy_is_labelled_ai_generated_and_probed(storage, generation):
    source = tiny_mp4(frames=24)
    assert not is_disclosed(probe_video_bytes(source).metadata)
    stored = store_video(generation, chunked(source), declared_type="video/mp4")
    assert stored.video_name == f"outputs/{generation.user_id}/{generation.pk}.mp4"
    assert stored.poster_name == f"posters/{generation.user_id}/{generation.pk}.jpg"
    info = probe_stored(stored.video_name)
    assert is_disclosed(info.metadata)
    for key, value in disclosure_tags(generation).items():
        assert info.metadata[key] == value
    assert "AI-generated" in info.metadata["title"]
    # Stream copy, not a re-encode: same codec, frames and size; metadata is from our copy.
    assert (info.codec, info.width, info.height, info.frame_count) == ("h264", 64, 48, 24)
    assert stored.info.size_bytes == default_storage.size(stored.video_name)
    assert abs(stored.info.duration_s - 2.0) < 0.01
    with default_storage.open(stored.poster_name, "rb") as poster:
        assert poster.read(3) == b"\xff\xd8\xff"


def test_an_already_labelled_file_is_not_remuxed(storage, generation):
    tags = {"title": "Promptreel x", "comment": "AI-generated video (local)"}
    source = tiny_mp4(tags=tags)
    stored = store_video(generation, chunked(source), declared_type="video/mp4")
    # Its own tags, not ours: only the C2PA manifest was added (tests/media/test_provenance.py).
    info = probe_stored(stored.video_name)
    assert {key: info.metadata[key] for key in tags} == tags
    assert stored.info.size_bytes > len(source)


def test_one_byte_over_the_cap_aborts_and_stores_nothing(storage, generation, settings):
    source = tiny_mp4()
    settings.VIDEO_MAX_BYTES = len(source) - 1
    consumed = []

    def stream():
        for chunk in chunked(source, 100):
            consumed.append(len(chunk))
            yield chunk

    with pytest.raises(BadVideo, match="larger than"):
        store_video(generation, stream(), declared_type="video/mp4")
    assert all_names() == []
    settings.VIDEO_MAX_BYTES = len(source)
    store_video(generation, chunked(source), declared_type="video/mp4")


@pytest.mark.parametrize("declared", ["text/html", "image/png", "application/json"])
def test_a_wrong_declared_type_is_refused(storage, generation, declared):
    with pytest.raises(BadVideo, match=declared):
        store_video(generation, chunked(tiny_mp4()), declared_type=declared)
    assert all_names() == []


@pytest.mark.parametrize(
    "content",
    [
        b"<html><body>Access denied</body></html>",
        b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200,  # an MP4 header with nothing inside
        b"",
    ],
)
def test_wrong_content_is_refused_whatever_the_declared_type(storage, generation, content):
    with pytest.raises(BadVideo, match="not a playable video"):
        store_video(generation, chunked(content), declared_type="video/mp4")
    assert all_names() == []


def test_a_cut_short_download_is_refused(generation):
    source = tiny_mp4(frames=48)
    with pytest.raises(BadVideo):
        store_video(generation, chunked(source[: len(source) * 2 // 3]), declared_type=None)


def probe_video_bytes(data: bytes):
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "v.mp4")
        with open(path, "wb") as out:
            out.write(data)
        return probe_video(path)
