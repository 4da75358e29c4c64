"""Small real H.264 MP4s for the fake fal server, made with PyAV and cached per process."""

from __future__ import annotations

import functools
import io
import threading

import av
import numpy as np

DEFAULT_WIDTH = 320
DEFAULT_HEIGHT = 180
DEFAULT_DURATION_S = 1.0
DEFAULT_FPS = 24

_lock = threading.Lock()


@functools.lru_cache(maxsize=16)
def _encode(width: int, height: int, duration_s: float, fps: int) -> bytes:
    frames = max(1, round(duration_s * fps))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "30"}
        ys = np.arange(height, dtype=np.int32)[:, None]
        xs = np.arange(width, dtype=np.int32)[None, :]
        for index in range(frames):
            # A moving colour gradient with a bright bar: real motion, compresses well.
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[..., 0] = ((xs + index * 6) % 256).astype(np.uint8)
            image[..., 1] = ((ys * 2 + index * 3) % 256).astype(np.uint8)
            image[..., 2] = ((xs + ys + index * 9) % 256).astype(np.uint8)
            bar = (index * 7) % max(1, width - 8)
            image[:, bar : bar + 8] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def make_mp4(
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    duration_s: float = DEFAULT_DURATION_S,
    fps: int = DEFAULT_FPS,
) -> bytes:
    """An H.264 MP4 of the requested size and length (cached; widths/heights must be even).

    Encoding is fast at small sizes (320x180 x 1 s takes a few ms); keep sizes small in
    tests - 1920x1080 x 10 s costs seconds.
    """
    if width % 2 or height % 2:
        raise ValueError("H.264 yuv420p needs even width and height")
    with _lock:  # lru_cache is thread-safe but would encode twice on a cold race
        return _encode(int(width), int(height), float(duration_s), int(fps))


def default_mp4() -> bytes:
    """The default clip: 320x180, 1 s, 24 fps."""
    return make_mp4()
