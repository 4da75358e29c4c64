"""Reading facts from a video file we hold (codec, size, duration, tags, a poster frame), and
copying its streams into an MP4 with our tags.

Whatever a provider claims about its output, these are the numbers we record, so the file is
opened with PyAV and its first frame actually decoded. Pure Python, no Django.
"""

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
from PIL import Image

# Top-level boxes an MP4/MOV file can start with (ISO BMFF; old QuickTime files skip 'ftyp').
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska and WebM


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    duration_s: float
    fps: float
    frame_count: int
    size_bytes: int
    metadata: dict[str, str]


class NotAVideo(ValueError):
    """The file is not a video we can decode; the message says why, in plain words."""


def _demuxer(path: str) -> str:
    """Pick the demuxer from the file's first bytes rather than letting FFmpeg guess.

    FFmpeg's guessing would also accept playlists (HLS, concat) that make it open other files
    or URLs, which is not something a downloaded file should be able to make us do.
    """
    with open(path, "rb") as src:
        head = src.read(12)
    if not head:
        raise NotAVideo("The file is empty.")
    if head[4:8] in _ISO_BOXES:
        return "mp4"
    if head[:4] == _EBML_MAGIC:
        return "matroska"
    raise NotAVideo("The file is not an MP4, MOV, WebM or Matroska video.")


def container_format(path: str) -> str:
    """FFmpeg's demuxer name for the file at path ("mp4" or "matroska"), from its magic bytes.

    Raises NotAVideo for anything else.
    """
    return _demuxer(path)


@contextmanager
def _open(
    path: str, fmt: str | None = None
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The container and its first video stream; FFmpeg's errors come out as NotAVideo."""
    fmt = fmt or _demuxer(path)
    try:
        container = av.open(path, format=fmt, metadata_errors="replace")
    except av.FFmpegError as exc:
        raise NotAVideo(f"The file cannot be read as a video: {exc}") from exc
    try:
        if not container.streams.video:
            raise NotAVideo("The file has no video stream.")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # e.g. an index cut off, or a codec FFmpeg lacks
            raise NotAVideo("The video stream cannot be decoded (unknown codec or cut short).")
        # One decoding thread: FFmpeg's default starts a thread per core on every open, which
        # costs more than the one or few frames a probe or a poster decodes (and a finalize
        # shares the cores with the other workers anyway). sample_frames opts back in.
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        yield container, stream
    except av.FFmpegError as exc:
        raise NotAVideo(f"The video cannot be decoded: {exc}") from exc
    finally:
        container.close()


def _duration(container, stream) -> float:
    # The video stream's own duration first: the container's may include a longer audio track.
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _scan(container, stream) -> tuple[int, bool]:
    """Count the video packets (demuxing only, which is cheap) and decode just until one frame
    comes out: (complete packets, whether a frame decoded)."""
    packets, decoded = 0, False
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_corrupt:  # the end-of-stream marker, or cut-off data
            continue
        packets += 1
        if not decoded:
            decoded = bool(packet.decode())
    if not decoded:  # decoders may hold frames back until told the stream has ended
        decoded = bool(stream.codec_context.decode(None))
    return packets, decoded


class OpenVideo:
    """A video file opened once for the reads a caller needs (its facts, a poster, an MP4
    copy). Each open costs FFmpeg a parse of the container and its index; copying a provider's
    clip used to open it five times (benchmarks/README.md, inflight). Get one from opened()."""

    def __init__(self, path: str, fmt: str, container, stream) -> None:
        self.path = path
        self.format = fmt  # container_format's name: "mp4" or "matroska"
        self._container = container
        self._stream = stream
        self._info: VideoInfo | None = None

    def info(self) -> VideoInfo:
        """Codec, frame size, duration, frame rate and container tags (see probe_video)."""
        if self._info is None:
            container, stream = self._container, self._stream
            listed = stream.frames  # from the MP4 index; Matroska has none and says 0
            packets, decoded = _scan(container, stream)
            if not decoded:
                raise NotAVideo("The video has no decodable frames.")
            if listed and packets < listed:
                raise NotAVideo(
                    f"The video is cut short: {packets} of its {listed} frames are there."
                )
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate
            self._info = VideoInfo(
                codec=ctx.name,
                width=ctx.width,
                height=ctx.height,
                duration_s=_duration(container, stream),
                fps=float(rate) if rate else 0.0,
                frame_count=packets,
                size_bytes=os.path.getsize(self.path),
                metadata={str(key): str(value) for key, value in container.metadata.items()},
            )
        return self._info

    def save_poster(
        self, out_path: str, *, at_fraction: float = 0.5, max_width: int = 1280
    ) -> tuple[int, int]:
        """Save the frame nearest at_fraction of the duration as a JPEG at most max_width
        wide; returns the poster's (width, height)."""
        if not 0.0 <= at_fraction <= 1.0:
            raise ValueError(f"at_fraction must be between 0 and 1, got {at_fraction!r}.")
        if max_width < 1:
            raise ValueError(f"max_width must be positive, got {max_width!r}.")
        frame = _frame_near(self._container, self._stream, at_fraction)
        if frame is None:
            raise NotAVideo("The video has no frames.")
        image = _fit(frame.to_image(), max_width)
        # Optimized Huffman tables (about 9 % smaller), not progressive: progressive encoding
        # took 20 ms for a 1280x720 poster against 9 ms, for another 3 %.
        image.save(out_path, "JPEG", quality=85, optimize=True)
        return image.size

    def copy_as_mp4(self, dst: str, tags: dict[str, str]) -> None:
        """Copy the video and audio streams into dst as MP4 with these container tags: stream
        copy, no re-encoding (other tracks, such as timecode or data tracks, are dropped);
        faststart moves the index to the front for browsers. Raises NotAVideo if FFmpeg cannot
        remux the file."""
        source = self._container
        try:
            source.seek(0)  # info() or a poster may have read on from the start
            with av.open(dst, "w", format="mp4", options={"movflags": "+faststart"}) as target:
                target.metadata.update(tags)
                mapping = {}
                for stream in source.streams:
                    if stream.type in ("video", "audio"):
                        mapping[stream.index] = target.add_stream_from_template(stream)
                for packet in source.demux([source.streams[index] for index in mapping]):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.stream = mapping[packet.stream.index]
                    target.mux(packet)
        except av.FFmpegError as exc:
            raise NotAVideo(f"The video cannot be copied: {exc}") from exc


@contextmanager
def opened(path: str) -> Iterator[OpenVideo]:
    """The video at path, opened once (NotAVideo if it is not one)."""
    fmt = _demuxer(path)
    with _open(path, fmt) as (container, stream):
        yield OpenVideo(path, fmt, container, stream)


def probe_video(path: str) -> VideoInfo:
    """Codec, frame size, duration, frame rate and container tags of the video at path.

    Raises NotAVideo when the file is not a video, its first frame does not decode, or it is
    cut short (fewer frames present than its index lists, as after an interrupted download).
    """
    with opened(path) as video:
        return video.info()


def _frame_near(container, stream, at_fraction: float):
    """Decode the frame whose timestamp is nearest at_fraction of the way through."""
    start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
    target = start + _duration(container, stream) * at_fraction
    try:
        # Lands on the keyframe at or before the target; decoding walks forward from there.
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
    except av.FFmpegError:
        container.seek(0)
    best = None
    for frame in container.decode(stream):
        if frame.time is None:
            return frame  # no timestamps to go by: any decodable frame will do
        if best is None or abs(frame.time - target) <= abs(best.time - target):
            best = frame
        if frame.time >= target:
            break
    return best


def extract_poster(
    video_path: str, out_path: str, *, at_fraction: float = 0.5, max_width: int = 1280
) -> tuple[int, int]:
    """Save the frame nearest at_fraction of the duration as a JPEG at most max_width wide.

    Returns the poster's (width, height).
    """
    with opened(video_path) as video:
        return video.save_poster(out_path, at_fraction=at_fraction, max_width=max_width)


def _fit(image: Image.Image, max_width: int) -> Image.Image:
    if image.width <= max_width:
        return image
    height = max(1, round(image.height * max_width / image.width))
    return image.resize((max_width, height), Image.Resampling.LANCZOS)


# The frames the output check judges (moderation.output_check): first, middle and last.
SAMPLE_FRACTIONS = (0.0, 0.5, 1.0)


def sample_frames(
    video_path: str, fractions: tuple[float, ...] = SAMPLE_FRACTIONS, *, max_width: int = 1024
) -> list[bytes]:
    """JPEG stills (at most max_width wide) of the frames nearest these fractions of the
    duration, in one decoding pass: provider clips often have a single keyframe, so seeking
    to each target would decode the clip again for every still."""
    with _open(video_path) as (container, stream):
        stream.thread_type = "AUTO"  # frame threads: the whole clip is decoded once
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        targets = [start + _duration(container, stream) * fraction for fraction in fractions]
        nearest: list = [None] * len(targets)
        for frame in container.decode(stream):
            when = frame.time if frame.time is not None else start
            for index, target in enumerate(targets):
                best = nearest[index]
                if best is None or abs(when - target) <= abs(best[0] - target):
                    nearest[index] = (when, frame)
        if nearest[0] is None:
            raise NotAVideo("The video has no frames.")
        images = [_fit(frame.to_image(), max_width) for _, frame in nearest]
    stills = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        stills.append(buffer.getvalue())
    return stills
