"""Moving video bytes into our storage: capped, streamed, probed from our own copy."""

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from .probe import NotAVideo, VideoInfo, extract_poster, probe_video

log = logging.getLogger(__name__)

VIDEO_TYPES = {"video/mp4", "application/octet-stream", "binary/octet-stream"}


class BadVideo(Exception):
    """The provider's output is not a video we can keep; the message says why."""


@dataclass(frozen=True)
class StoredVideo:
    video_name: str
    poster_name: str
    info: VideoInfo


def store_video(generation, chunks: Iterable[bytes], *, declared_type: str | None) -> StoredVideo:
    """Spool the stream to a temporary file (never whole in memory), check it, then store it.

    Probing our own copy, not the provider's claims, is what decides the recorded metadata.
    """
    if declared_type and declared_type.split(";")[0].strip().lower() not in VIDEO_TYPES:
        raise BadVideo(f"The provider returned {declared_type}, not an MP4 video.")
    limit = settings.VIDEO_MAX_BYTES
    with tempfile.TemporaryDirectory(prefix="promptreel-") as scratch:
        video_path = os.path.join(scratch, "video.mp4")
        poster_path = os.path.join(scratch, "poster.jpg")
        written = 0
        with open(video_path, "wb") as spool:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise BadVideo(f"The video is larger than the {limit // 2**20} MB limit.")
                spool.write(chunk)
        try:
            info = probe_video(video_path)
            extract_poster(video_path, poster_path)
        except NotAVideo as exc:
            raise BadVideo(f"The provider's output is not a playable video: {exc}") from exc
        video_name = generation.output.field.generate_filename(generation, "video.mp4")
        poster_name = generation.poster.field.generate_filename(generation, "poster.jpg")
        # A finalize that died after saving left these names behind: replace, never suffix.
        delete_quietly(video_name, poster_name)
        with open(video_path, "rb") as video, open(poster_path, "rb") as poster:
            video_name = default_storage.save(video_name, File(video))
            poster_name = default_storage.save(poster_name, File(poster))
    return StoredVideo(video_name=video_name, poster_name=poster_name, info=info)


def delete_quietly(*names: str) -> None:
    for name in names:
        try:
            if name and default_storage.exists(name):
                default_storage.delete(name)
        except OSError:
            log.exception("could not delete %s", name)
