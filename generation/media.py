"""Moving image and video bytes into our storage: capped, streamed, probed from our own copy.

* Image inputs by link: fetch_image_url() downloads through safe_fetch (https only, checked
  addresses, byte cap, one deadline); the bytes then go through images.clean_image like an
  upload does (content sniffing, pixel cap, re-encode without metadata).
* Provider videos: store_video() spools the stream to a temporary file (never whole in memory,
  capped at VIDEO_MAX_BYTES), checks it is a complete video, makes sure it carries the
  AI-generated disclosure tags (remuxing without re-encoding when it does not), signs it with
  C2PA content credentials (generation.provenance: AI-generated, which model, when), probes our
  copy, cuts a poster frame, samples the first, middle and last frame for the output check when
  asked (moderation.output_check, run by the finalize step) and saves video and poster into
  default_storage (on S3 as a multipart upload read from the spooled file part by part; see
  save_file and config.settings.s3_storage_options).
"""

import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone
from storages.utils import clean_name

from core import safe_fetch

from . import provenance
from .probe import NotAVideo, VideoInfo, container_format, opened, sample_frames

log = logging.getLogger(__name__)

VIDEO_TYPES = {"video/mp4", "video/quicktime", "application/octet-stream", "binary/octet-stream"}
DISCLOSURE = "AI-generated"
SPOOL_CHUNK = 1024 * 1024

# Extra keyword arguments for safe_fetch.fetch_url; tests use it to reach a local server
# (allow_http, allowed_ports, ip_check). Empty in production.
FETCH_OPTIONS: dict = {}


class BadVideo(Exception):
    """The provider's output is not a video we can keep; the message says why."""


@dataclass(frozen=True)
class StoredVideo:
    video_name: str
    poster_name: str
    info: VideoInfo
    manifest_label: str  # the C2PA manifest the stored file carries
    frames: tuple[bytes, ...] = ()  # JPEG stills of the first, middle and last frame


def fetch_image_url(url: str) -> bytes:
    """The bytes behind a user's image link, for generation_create(images=[...]).

    Raises safe_fetch.FetchRefused (a ValueError whose str() tells the user what to fix) for
    anything unsafe or unusable: not https, a private/loopback/metadata address in any
    spelling or after a redirect, larger than IMAGE_MAX_BYTES, slower than
    IMAGE_FETCH_TIMEOUT, an HTTP error. The content itself is judged later by clean_image.
    """
    fetched = safe_fetch.fetch_url(
        url,
        max_bytes=settings.IMAGE_MAX_BYTES,
        timeout=settings.IMAGE_FETCH_TIMEOUT,
        **FETCH_OPTIONS,
    )
    return fetched.content


class VideoRejected(ValueError):
    """A user's input video we will not send on; str() says what to fix."""


@dataclass(frozen=True)
class InputVideo:
    """A user's input video, spooled to a local file and probed (valid inside input_video())."""

    path: str
    info: VideoInfo
    content_type: str
    extension: str
    poster: bytes  # one frame as JPEG, for moderation


# Container formats (as probe.container_format names them; QuickTime files are "mp4" too) a
# user may give, and how we store them. Matroska is taken only as WebM (its DocType says so).
INPUT_VIDEO_FORMATS = {"mp4": ("video/mp4", "mp4"), "webm": ("video/webm", "webm")}
# Video codecs (FFmpeg's names) an input video may use: what browsers and the models read.
INPUT_VIDEO_CODECS = {
    "h264": "H.264",
    "hevc": "H.265",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "mpeg4": "MPEG-4",
}


@contextmanager
def input_video(*, upload=None, url: str | None = None) -> Iterator[InputVideo]:
    """An input video from an upload (a Django UploadedFile) or an https link, spooled to a
    temporary file (never whole in memory), capped at INPUT_VIDEO_MAX_BYTES and
    INPUT_VIDEO_MAX_SECONDS, and probed from our copy. Links go through safe_fetch like image
    links (https only, public addresses checked hop by hop, one deadline). Raises
    VideoRejected or safe_fetch.FetchRefused, both with a message saying what to fix."""
    limit = settings.INPUT_VIDEO_MAX_BYTES
    with tempfile.TemporaryDirectory(prefix="promptreel-input-") as scratch:
        path = os.path.join(scratch, "input")
        if url is not None:
            with safe_fetch.open_stream(
                url,
                max_bytes=limit,
                timeout=settings.INPUT_VIDEO_FETCH_TIMEOUT,
                what="video",
                **FETCH_OPTIONS,
            ) as stream:
                _spool(stream, path, limit)
        else:
            _spool(upload.chunks(), path, limit)
        yield _probed_input(path, os.path.join(scratch, "poster.jpg"))


def _spool(chunks: Iterable[bytes], path: str, limit: int) -> None:
    written = 0
    with open(path, "wb") as spool:
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise VideoRejected(f"The video is larger than the {limit // 2**20} MB limit.")
            spool.write(chunk)


def _probed_input(path: str, poster_path: str) -> InputVideo:
    try:
        kind = container_format(path)
        if kind == "matroska" and _is_webm(path):
            kind = "webm"
        if kind not in INPUT_VIDEO_FORMATS:
            raise VideoRejected("The video must be an MP4, WebM or QuickTime (.mov) file.")
        with opened(path) as video:
            info = video.info()
            if info.codec not in INPUT_VIDEO_CODECS:
                raise VideoRejected(
                    f"The video is encoded as {info.codec}; use "
                    f"{', '.join(INPUT_VIDEO_CODECS.values())} "
                    "(most phones and editors export H.264)."
                )
            video.save_poster(poster_path, max_width=640)
    except NotAVideo as exc:
        raise VideoRejected(f"The video could not be read: {exc}") from None
    seconds = settings.INPUT_VIDEO_MAX_SECONDS
    if info.duration_s > seconds:
        raise VideoRejected(f"The video is {info.duration_s:.0f} s long; the limit is {seconds} s.")
    with open(poster_path, "rb") as poster:
        content_type, extension = INPUT_VIDEO_FORMATS[kind]
        return InputVideo(path, info, content_type, extension, poster.read())


def _is_webm(path: str) -> bool:
    """A Matroska file whose EBML header names the WebM DocType (it comes in the first bytes)."""
    with open(path, "rb") as handle:
        return b"\x42\x82\x84webm" in handle.read(64)


def disclosure_tags(generation) -> dict[str, str]:
    """The container tags every stored MP4 carries (design: output is labelled AI-generated)."""
    return {
        "title": f"{DISCLOSURE} video ({settings.SITE_NAME})",
        "comment": f"{DISCLOSURE} with {generation.endpoint_id} via {settings.SITE_NAME}.",
    }


def is_disclosed(metadata: dict[str, str]) -> bool:
    """True when the file's tags already say it is AI-generated."""
    comment = metadata.get("comment", "")
    return bool(metadata.get("title")) and DISCLOSURE.lower() in comment.lower()


def store_video(
    generation, chunks: Iterable[bytes], *, declared_type: str | None, frames: bool = False
) -> StoredVideo:
    """Spool the stream to a temporary file (never whole in memory), check it, then store it.

    frames: also return JPEG stills of the first, middle and last frame for the output check
    (one decoding pass of the clip: about 0.3 s for 5 s of 720p, 0.8 s of 1080p, see
    benchmarks.provenance); off when nothing would look at them.

    Probing our own copy, not the provider's claims, is what decides the recorded metadata.
    Raises BadVideo (nothing stored) for a wrong type, an over-size or broken file.
    """
    if declared_type and declared_type.split(";")[0].strip().lower() not in VIDEO_TYPES:
        raise BadVideo(f"The provider returned {declared_type}, not an MP4 video.")
    limit = settings.VIDEO_MAX_BYTES
    with tempfile.TemporaryDirectory(prefix="promptreel-") as scratch:
        spool_path = os.path.join(scratch, "download.mp4")
        tagged_path = os.path.join(scratch, "tagged.mp4")
        signed_path = os.path.join(scratch, "signed.mp4")
        poster_path = os.path.join(scratch, "poster.jpg")
        written = 0
        with open(spool_path, "wb") as spool:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise BadVideo(f"The video is larger than the {limit // 2**20} MB limit.")
                spool.write(chunk)
        try:
            video_path = spool_path
            with opened(spool_path) as download:
                # The download as it came: complete (not cut short) and decodable?
                original = download.info()
                # Remuxed into MP4 also when tagged already: the manifest is signed as an MP4.
                if download.format != "mp4" or not is_disclosed(original.metadata):
                    download.copy_as_mp4(tagged_path, disclosure_tags(generation))
                    video_path = tagged_path
            manifest_label = provenance.sign_video(
                video_path, signed_path, endpoint_id=generation.endpoint_id, when=timezone.now()
            )
            video_path = signed_path
            with opened(video_path) as ours:
                info = ours.info()  # what we keep is what we describe
                ours.save_poster(poster_path)
            stills = tuple(sample_frames(video_path)) if frames else ()
        except NotAVideo as exc:
            raise BadVideo(f"The provider's output is not a playable video: {exc}") from exc
        except provenance.SigningFailed as exc:
            raise BadVideo(f"The video could not be given content credentials: {exc}") from exc
        if not is_disclosed(info.metadata):
            raise BadVideo("The video could not be labelled as AI-generated.")
        video_name = generation.output.field.generate_filename(generation, "video.mp4")
        poster_name = generation.poster.field.generate_filename(generation, "poster.jpg")
        # Only the finalize holding the row's lease gets here, so files under these names were
        # left by an attempt that died after saving: replace them, never add a suffixed copy.
        delete_quietly(video_name, poster_name)
        video_name = save_file(video_name, video_path)
        poster_name = save_file(poster_name, poster_path)
    return StoredVideo(
        video_name=video_name,
        poster_name=poster_name,
        info=info,
        manifest_label=manifest_label,
        frames=stills,
    )


def save_file(name: str, path: str) -> str:
    """Save the local file at path into default_storage as name (or a free variant of it);
    returns the stored name. Streams from disk in bounded memory on every backend.

    On S3 this hands boto3 the PATH (upload_file), not an open file object: for a file object
    s3transfer reads each multipart part into memory (≈ 40 MB peak for a 200 MB video with
    8 MiB parts), for a path it reads the parts from disk as they are sent (≈ 6 MB). The
    object parameters (Content-Type, ACL) and the name rules are django-storages' own.
    """
    from .delivery import is_s3

    if is_s3(default_storage):
        storage = default_storage
        name = storage.get_available_name(name)  # file_overwrite=False: never replace
        key = storage._normalize_name(clean_name(name))  # adds the AWS_LOCATION prefix
        storage.bucket.Object(key).upload_file(
            path,
            ExtraArgs=storage._get_write_parameters(key),
            Config=storage.transfer_config,
        )
        return clean_name(name)
    with open(path, "rb") as handle:
        return default_storage.save(name, File(handle))  # FileSystemStorage: 64 KiB chunks


def delete_quietly(*names: str) -> None:
    for name in names:
        try:
            if name and default_storage.exists(name):
                default_storage.delete(name)
        except Exception:  # OSError on disk, botocore's ClientError on S3
            log.exception("could not delete %s", name)


HIDDEN_PREFIX = "taken-down/"


def output_hide(generation_id) -> None:
    """Move a taken-down generation's video and poster to other names, so that links signed
    before the take-down (S3 presigned URLs cannot be revoked) find nothing. The row follows
    the files, so moderators still see them; output_unhide moves them back."""
    _output_move(generation_id, lambda name: HIDDEN_PREFIX + name, hidden=False)


def output_unhide(generation_id) -> None:
    _output_move(generation_id, lambda name: name.removeprefix(HIDDEN_PREFIX), hidden=True)


def _output_move(generation_id, rename, *, hidden: bool) -> None:
    from .models import Generation

    row = Generation.objects.filter(pk=generation_id).values("output", "poster").first()
    if row is None:
        return
    moves = {
        field: (name, rename(name))
        for field, name in row.items()
        if name and name.startswith(HIDDEN_PREFIX) == hidden
    }
    for field, (old, new) in list(moves.items()):
        try:
            _move_file(old, new)
        except FileNotFoundError:  # gone already (the retention job): nothing to hide or keep
            log.warning("generation %s: %s is not stored, so not moved", generation_id, old)
            del moves[field]
    if moves:
        Generation.objects.filter(
            pk=generation_id, **{f: old for f, (old, _) in moves.items()}
        ).update(**{f: new for f, (_, new) in moves.items()})
        delete_quietly(*(old for old, _ in moves.values()))


def _move_file(old: str, new: str) -> None:
    """Copy `old` to `new` in default_storage (server-side on S3, a link on disk)."""
    from .delivery import is_s3

    if is_s3(default_storage):
        storage = default_storage
        bucket = storage.bucket
        bucket.copy(
            {"Bucket": bucket.name, "Key": storage._normalize_name(old)},
            storage._normalize_name(new),
        )
        return
    source, target = default_storage.path(old), default_storage.path(new)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
        os.unlink(target)
    os.link(source, target)
