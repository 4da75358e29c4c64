"""The offline renderer: real H.264 MP4s from a prompt or an image, with no AI and no network.

It stands in for the video provider (design.md section 3), so its output has to look and behave
like a provider's: honest dimensions, duration and metadata, a file browsers can start playing
before it has fully downloaded. Pure Python on PyAV, Pillow and numpy, no Django.

Every video is one still "canvas" a little larger than the frame, filmed by a moving virtual
camera: each frame is a single crop-and-resize of the canvas, so the cost per frame stays flat
whatever the scene is, and frames are encoded as they are made instead of held in memory.
"""

import colorsys
import contextlib
import hashlib
import math
import os
import unicodedata
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

MOTION_PRESETS: dict[str, str] = {
    "static": "Static",
    "dolly_in": "Dolly in",
    "dolly_out": "Dolly out",
    "pan_left": "Pan left",
    "pan_right": "Pan right",
    "tilt_up": "Tilt up",
    "tilt_down": "Tilt down",
    "orbit": "Orbit",
}
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
RESOLUTIONS: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}

MAX_DURATION_S = 30.0
MAX_SIDE = 4096
COMMENT = "AI-generated video (Promptreel offline renderer)"
ENCODER = "Promptreel offline renderer (libx264)"
# The canvas is this much larger than the frame, which is the room the camera has to move in.
MARGIN = 1.25
# Fonts to try for the caption; Pillow's bundled font is the fallback (Latin only, no file needed).
FONT_FILES = (
    "DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """The resolution names the short side, like the providers' '720p' does for any aspect."""
    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"Unknown resolution {resolution!r}. Use one of: {', '.join(RESOLUTIONS)}."
        )
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(
            f"Unknown aspect ratio {aspect_ratio!r}. Use one of: {', '.join(ASPECT_RATIOS)}."
        )
    short = RESOLUTIONS[resolution]
    w, h = (int(part) for part in aspect_ratio.split(":"))
    long = 2 * round(short * max(w, h) / min(w, h) / 2)  # H.264 with yuv420p needs even sides
    return (long, short) if w >= h else (short, long)


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The supported ratio closest to the image's shape, compared on a log scale so that
    2:1 and 1:2 are equally far from 1:1."""
    if width <= 0 or height <= 0:
        raise ValueError(f"Image size must be positive, got {width}x{height}.")
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(math.log(w / h) - target)

    return min(ASPECT_RATIOS, key=distance)


@dataclass(frozen=True)
class RenderSpec:
    width: int
    height: int
    duration_s: float
    fps: int = 24
    preset: str = "static"
    seed: int = 0
    prompt: str = ""
    image_path: str | None = None
    # All the input images in order (Scenes, Keyframes): the clip goes from each to the next.
    # image_path alone is one image (and what jobs queued before this field carried).
    image_paths: tuple[str, ...] = ()
    title: str = "Promptreel"


def _validate(spec: RenderSpec) -> float:
    """Check the spec and return the duration to render (capped, like the providers cap it)."""
    if spec.preset not in MOTION_PRESETS:
        raise ValueError(
            f"Unknown motion preset {spec.preset!r}. Use one of: {', '.join(MOTION_PRESETS)}."
        )
    for name, side in (("width", spec.width), ("height", spec.height)):
        if not isinstance(side, int) or side < 16 or side > MAX_SIDE or side % 2:
            raise ValueError(
                f"Frame {name} must be an even number from 16 to {MAX_SIDE}, got {side!r}."
            )
    if not isinstance(spec.fps, int) or not 1 <= spec.fps <= 60:
        raise ValueError(f"fps must be a whole number from 1 to 60, got {spec.fps!r}.")
    duration = float(spec.duration_s)
    if not duration > 0 or math.isinf(duration):  # `not >` also catches NaN
        raise ValueError(f"Duration must be a positive number of seconds, got {spec.duration_s!r}.")
    return min(duration, MAX_DURATION_S)


_PANS = {"pan_left": (-1, 0), "pan_right": (1, 0), "tilt_up": (0, -1), "tilt_down": (0, 1)}


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * t)


def _camera(preset: str, t: float) -> tuple[float, float, float]:
    """Where the camera looks at time t in [0, 1]: (centre x, centre y, view size), all as
    fractions of the canvas. A view of 1/MARGIN shows the canvas at its own pixel scale."""
    e = _ease(t)
    near = 1 / MARGIN
    if preset == "dolly_in":
        return 0.5, 0.5, 1 - 0.28 * e
    if preset == "dolly_out":
        return 0.5, 0.5, 0.72 + 0.28 * e
    if preset in _PANS:
        # Panning left turns the camera towards what lies left, so the view's centre moves left.
        dx, dy = _PANS[preset]
        return 0.5 + dx * (0.2 * e - 0.1), 0.5 + dy * (0.2 * e - 0.1), near
    if preset == "orbit":
        # The centre circles once around the middle while the view breathes in and out; the
        # view never exceeds 0.88 so the 0.06 swing stays inside the canvas.
        a = 2 * math.pi * e
        return 0.5 + 0.06 * math.sin(a), 0.5 - 0.03 * math.cos(a), 0.84 - 0.04 * math.sin(a)
    return 0.5, 0.5, 1.0


def _crop_box(preset: str, t: float, cw: int, ch: int) -> tuple[float, float, float, float]:
    cx, cy, view = _camera(preset, t)
    w, h = view * cw, view * ch
    left = min(max(cx * cw - w / 2, 0.0), cw - w)
    top = min(max(cy * ch - h / 2, 0.0), ch - h)
    return left, top, left + w, top + h


def _rng(spec: RenderSpec) -> np.random.Generator:
    # Hashing seed and prompt together means a new prompt gets a new scene even with seed 0.
    digest = hashlib.sha256(f"{spec.seed}\x00{spec.prompt}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour in 0..255 as a float vector, ready to broadcast over an image."""
    return np.array(colorsys.hsv_to_rgb(h % 1, s, v), dtype=np.float32) * 255


def _scene(rng: np.random.Generator, cw: int, ch: int) -> tuple[Image.Image, np.ndarray]:
    """A procedural landscape: sky gradient, sun or moon, stars at night, layered hills.
    Returns the canvas and the light colour used for the drifting particles."""
    hue = rng.random()
    night = rng.random() < 0.3
    sky_top = _hsv((hue + 0.6) % 1, 0.7, 0.25 if night else 0.75)
    sky_low = _hsv((hue + rng.uniform(-0.12, 0.12)) % 1, 0.45, 0.45 if night else 1.0)
    horizon = rng.uniform(0.5, 0.68)
    ys = np.linspace(0, 1, ch, dtype=np.float32)[:, None, None]
    xs = np.arange(cw, dtype=np.float32)
    mix = np.clip(ys / horizon, 0, 1) ** 1.5
    img = sky_top * (1 - mix) + sky_low * mix
    img = np.broadcast_to(img, (ch, cw, 3)).copy()

    if night:  # stars only above the hills, a little sparser towards the horizon
        count = cw * ch // 900
        sx, sy = rng.integers(0, cw, count), (rng.random(count) ** 1.6 * horizon * ch).astype(int)
        img[sy, sx] = np.maximum(img[sy, sx], (rng.uniform(120, 255, count))[:, None])

    light = _hsv((hue + 0.08) % 1, 0.15 if night else 0.45, 1.0)
    sun_x, sun_y = rng.uniform(0.15, 0.85) * cw, rng.uniform(0.15, 0.4) * ch
    radius = rng.uniform(0.05, 0.09) * ch
    dist = np.hypot(xs[None, :] - sun_x, np.arange(ch, dtype=np.float32)[:, None] - sun_y) / radius
    disc = np.clip(1.5 - dist, 0, 1)[..., None]  # 1 inside, a soft 0.5-radius edge outside
    glow = (np.exp(-dist / 3) * 0.35)[..., None]
    img = img * (1 - disc) + (light * 0.4 + 153) * disc + light * glow

    layers = int(rng.integers(3, 6))
    far, near = sky_low * 0.8, _hsv((hue + 0.35) % 1, 0.6, 0.12 if night else 0.3)
    y_grid = np.arange(ch, dtype=np.float32)[:, None]
    for k in range(layers):
        depth = k / max(layers - 1, 1)  # 0 = far and hazy, 1 = near and dark
        base = (horizon + depth * (0.95 - horizon) * 0.8) * ch
        ridge = np.full(cw, base, dtype=np.float32)
        for _ in range(3):
            freq = rng.uniform(0.5, 4) * 2 * math.pi / cw
            amplitude = rng.uniform(0.01, 0.06) * ch * (1 + depth)
            ridge -= amplitude * np.sin(freq * xs + rng.uniform(0, 6.3))
        # One pixel of soft edge keeps the ridges from stair-stepping when the camera moves.
        alpha = np.clip(y_grid - ridge[None, :] + 0.5, 0, 1)[..., None]
        shade = 1 - 0.25 * np.clip((y_grid - base) / ch * 3, 0, 1)[..., None]
        colour = (far * (1 - depth) + near * depth) * shade
        img = img * (1 - alpha) + colour * alpha
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB"), light


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in FONT_FILES:
        with contextlib.suppress(OSError):
            return ImageFont.truetype(name, size)
    return ImageFont.load_default(size=size)


def _wrap(text: str, font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap; words too long for a line (or scripts without spaces) break anywhere.
    Text that does not fit in max_lines ends with an ellipsis."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if len(lines) > max_lines:
            break  # enough to know it will be truncated
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if font.getlength(line + char) > max_width and line:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and font.getlength(last + "...") > max_width:
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last.rstrip() + "..."]
    return lines


def _caption(prompt: str, width: int, height: int) -> tuple[Image.Image, Image.Image] | None:
    """The prompt on a dark band that fades in from above, as (RGB image, alpha mask)."""
    # Control and format characters (newlines, zero-width joiners...) would draw as boxes.
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in prompt)
    text = " ".join(text.split())[:1000]
    if not text:
        return None
    size = max(10, round(min(width, height) * 0.042))
    font = _font(size)
    margin = max(8, round(width * 0.04))
    lines = _wrap(text, font, width - 2 * margin, 3 if height > width else 2)
    line_h = round(size * 1.3)
    band_h = min(height, len(lines) * line_h + 2 * margin)
    band = Image.new("RGBA", (width, band_h), (0, 0, 0, 0))
    fade = np.clip(np.linspace(0, 1.6, band_h), 0, 1) * 170
    band.putalpha(Image.fromarray(np.repeat(fade[:, None], width, 1).astype(np.uint8), "L"))
    draw = ImageDraw.Draw(band)
    y = band_h - margin - len(lines) * line_h
    for line in lines:
        x = (width - font.getlength(line)) / 2
        draw.text((x + 1, y + 1), line, font=font, fill=(0, 0, 0, 255))
        draw.text((x, y), line, font=font, fill=(255, 255, 255, 255))
        y += line_h
    return band.convert("RGB"), band.getchannel("A")


def _load_image(path: str, cw: int, ch: int) -> Image.Image:
    """The input image, upright, in RGB, cover-cropped (centred) to the canvas."""
    try:
        with Image.open(path) as src:
            # Big JPEGs can decode at 1/2..1/8 scale, as long as the result still covers the
            # canvas; orientations 5-8 are quarter turns, so the canvas is measured sideways.
            sideways = src.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            tw, th = (ch, cw) if sideways else (cw, ch)
            scale = max(tw / src.width, th / src.height)
            src.draft("RGB", (math.ceil(src.width * scale), math.ceil(src.height * scale)))
            img = ImageOps.exif_transpose(src)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                # Transparent pixels hold arbitrary colours; show them as a neutral dark grey.
                rgba = img.convert("RGBA")
                img = Image.new("RGB", rgba.size, (32, 32, 32))
                img.paste(rgba, mask=rgba.getchannel("A"))
            img = img.convert("RGB")
            return ImageOps.fit(img, (cw, ch), Image.Resampling.LANCZOS)
    except (OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"Cannot read the input image {path!r}: {exc}") from exc


def _frames(spec: RenderSpec, count: int) -> Iterator[Image.Image]:
    """Yield the frames one by one; only the canvas and the current frame live in memory."""
    w, h = spec.width, spec.height
    cw, ch = round(w * MARGIN), round(h * MARGIN)
    paths = list(spec.image_paths) or ([spec.image_path] if spec.image_path else [])
    if len(paths) > 1:
        yield from _sequence_frames(spec, [_load_image(path, cw, ch) for path in paths], count)
        return
    if paths:
        canvas, light, caption = _load_image(paths[0], cw, ch), None, None
    else:
        rng = _rng(spec)
        canvas, light = _scene(rng, cw, ch)
        caption = _caption(spec.prompt, w, h)
        # Motes: position, drift per second (rising slowly), radius, twinkle phase.
        mx, my, vx, vy, radius, phase = rng.random((6, 40 + w * h // 12000))
        vx, vy = (vx - 0.5) * 0.06, -0.01 - vy * 0.05
        radius = (0.6 + 1.6 * radius) * min(w, h) / 360
        tint = tuple(int(c) for c in light)
    previous_box, base = None, None
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        box = _crop_box(spec.preset, t, cw, ch)
        if box != previous_box:  # a static camera resizes the canvas only once
            base = canvas.resize((w, h), Image.Resampling.BILINEAR, box=box)
            previous_box = box
        if light is None:
            yield base
            continue
        frame = base.copy()
        draw = ImageDraw.Draw(frame, "RGBA")
        seconds = i / spec.fps
        xs, ys = (mx + vx * seconds) % 1 * w, (my + vy * seconds) % 1 * h
        alphas = 110 + 100 * np.sin(phase * 6.3 + seconds * 2.5)
        for x, y, r, a in zip(xs, ys, radius, alphas, strict=True):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*tint, int(a)))
        if caption is not None:
            frame.paste(caption[0], (0, h - caption[0].height), caption[1])
        yield frame


# Of each image's share of the clip, the last this much crossfades into the next image.
CROSSFADE_SHARE = 0.5


def _sequence_frames(spec: RenderSpec, canvases: list, count: int) -> Iterator[Image.Image]:
    """Several images in order: each holds, then crossfades into the next (eased), under the
    preset's camera, so the first frame is the first image and the last the last."""
    w, h = spec.width, spec.height
    cw, ch = canvases[0].size
    steps = len(canvases) - 1
    hold = 1.0 - CROSSFADE_SHARE
    for i in range(count):
        t = i / (count - 1) if count > 1 else 0.0
        position = t * steps
        index = min(int(position), steps - 1)
        into = position - index  # 0..1 through the move from image `index` to the next
        mix = _ease(max(0.0, (into - hold) / CROSSFADE_SHARE))  # 0 while holding, 1 at the end
        canvas = (
            canvases[index]
            if mix == 0.0
            else Image.blend(canvases[index], canvases[index + 1], mix)
        )
        yield canvas.resize(
            (w, h), Image.Resampling.BILINEAR, box=_crop_box(spec.preset, t, cw, ch)
        )


def _prefetch(items: Iterator, depth: int = 4) -> Iterator:
    """Advance items in a worker thread, a few ahead of the consumer.

    Pillow's resize, swscale and x264 all release the GIL, so making the next frames while the
    current one encodes cuts render time by about 40% on two cores. One worker means the
    generator is never advanced twice at once; its exceptions surface through result().
    """
    end = object()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-frames")
    try:
        pending = deque(pool.submit(next, items, end) for _ in range(depth))
        while (item := pending.popleft().result()) is not end:
            pending.append(pool.submit(next, items, end))
            yield item
    finally:
        pool.shutdown(cancel_futures=True)


def _video_frames(spec: RenderSpec, count: int) -> Iterator[av.VideoFrame]:
    fps = Fraction(1, spec.fps)
    for index, image in enumerate(_frames(spec, count)):
        # Converted here, in the producer thread, with the BT.709 matrix the stream is tagged with.
        frame = av.VideoFrame.from_image(image).reformat(
            format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        frame.pts, frame.time_base = index, fps
        yield frame


def render_video(spec: RenderSpec, out_path: str) -> None:
    """Write an H.264 (yuv420p, faststart) MP4 of round(duration_s * fps) frames to out_path."""
    duration = _validate(spec)
    count = max(1, round(duration * spec.fps))
    rate = Fraction(spec.fps, 1)
    try:
        # faststart moves the index to the front so browsers can play while downloading.
        with av.open(out_path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
            container.metadata.update({"title": spec.title, "comment": COMMENT})
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
            # FFmpeg writes its own 'encoder' tag over ours, so name the renderer on the track.
            stream.metadata["handler_name"] = ENCODER
            ctx = stream.codec_context
            ctx.time_base = 1 / rate
            ctx.gop_size = 2 * spec.fps  # a keyframe every two seconds keeps seeking snappy
            # BT.709 is what browsers assume for HD; untagged frames could be read as BT.601.
            ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # AVCOL_*_BT709
            ctx.color_range = 1  # limited ("MPEG") range, what players expect from H.264
            ctx.options = {"preset": "veryfast", "crf": "23", "profile": "high"}
            for frame in _prefetch(_video_frames(spec, count)):
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    except BaseException:
        # Never leave a half-written file that looks like a finished video.
        with contextlib.suppress(OSError):
            os.remove(out_path)
        raise
