"""Check and re-encode user-uploaded images (docs/architecture.md; README "Storage and media").

Framework-free on purpose: the same function serves the web form, the API and the CLI.

The order of the checks matters for safety:
1. read at most max_bytes + 1 bytes, so an endless upload cannot exhaust memory;
2. sniff the magic bytes, so only JPEG, PNG and WebP reach Pillow's parsers at all;
3. open lazily (header only) and compare width × height with max_pixels BEFORE any pixel data
   is decoded, so a few-KB "decompression bomb" never allocates its gigabytes;
4. decode fully inside a try, so malformed input becomes a refusal rather than a crash;
5. re-encode from pixels only, so EXIF (GPS, camera serials), XMP, comments and text chunks are
   dropped instead of being passed on to the provider or stored.

Animated WebP / APNG: only the first frame is kept (the video models take a still image), and
MPO files (JPEGs with extra frames, as many phones write them) are treated the same way.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageCms, ImageOps

log = logging.getLogger(__name__)

ACCEPTED = "JPEG, PNG or WebP"
JPEG_QUALITY = 90

# Pillow's format names that each sniffed type may legitimately open as. Phones write MPO
# (JPEG plus extra frames for depth or previews); Pillow reports those as "MPO".
_PILLOW_FORMATS = {"jpeg": {"JPEG", "MPO"}, "png": {"PNG"}, "webp": {"WEBP"}}

# Recognisable but refused types, so the message can say what the file actually is.
_OTHER_SIGNATURES = [
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
]


class ImageRejected(ValueError):
    """The image cannot be used. str(exc) is user-facing and says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int


def clean_image(
    data: bytes | BinaryIO, *, max_bytes: int, max_pixels: int, min_side: int = 64
) -> CleanImage:
    """Validate an uploaded image and return it re-encoded without metadata.

    Raises ImageRejected with one of the codes image_too_large_bytes, image_unsupported_type,
    image_corrupt, image_too_many_pixels, image_too_small.
    """
    raw = _read_capped(data, max_bytes)
    kind = _sniff(raw)
    image = _open_header(raw, kind, max_pixels)
    try:
        _check_dimensions(image.size, max_pixels=max_pixels, min_side=min_side)
        try:
            image.load()
        except Exception as exc:  # Pillow raises many types (OSError, ValueError, SyntaxError…)
            raise ImageRejected(
                "image_corrupt",
                "The image file is damaged or incomplete and could not be read. "
                "Try exporting or saving it again.",
            ) from exc
        return _reencode(image)
    finally:
        image.close()


def _read_capped(data: bytes | BinaryIO, max_bytes: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        # read() may return short chunks (sockets, uploads), so loop until EOF or one past the cap.
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = data.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        raw = b"".join(chunks)
    if len(raw) > max_bytes:
        raise ImageRejected(
            "image_too_large_bytes",
            f"The image file is larger than the {_human_bytes(max_bytes)} limit. "
            "Save it at a smaller size or higher compression and try again.",
        )
    if not raw:
        raise ImageRejected("image_corrupt", "The image file is empty.")
    return raw


def _sniff(raw: bytes) -> str:
    """Identify the type from the content alone; file names and declared types are ignored."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "webp"
    what = "this type of file"
    for signature, name in _OTHER_SIGNATURES:
        if raw.startswith(signature):
            what = name
            break
    else:
        if raw[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
            what = "a HEIC/AVIF image"
        elif raw.lstrip()[:1] == b"<":
            what = "an HTML, XML or SVG document"
    raise ImageRejected(
        "image_unsupported_type",
        f"The file is {what}, which is not accepted. Upload a {ACCEPTED} image.",
    )


def _open_header(raw: bytes, kind: str, max_pixels: int) -> Image.Image:
    """Parse only the header; Image.open does not decode pixel data yet."""
    try:
        # formats= restricts Pillow to the parser matching the magic bytes, so no other
        # plugin (with its own bugs) ever sees user data.
        image = Image.open(io.BytesIO(raw), formats=[_pillow_name(kind)])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (MAX_IMAGE_PIXELS) fired in the header; the warning only arrives
        # here as an exception when warnings are turned into errors (e.g. -W error).
        raise ImageRejected(
            "image_too_many_pixels",
            f"The image has far more pixels than the {max_pixels / 1_000_000:g}-megapixel limit "
            f"({_example_size(max_pixels)}). Resize it and try again.",
        ) from exc
    except Exception as exc:
        raise ImageRejected(
            "image_corrupt",
            f"The file looks like a {kind.upper()} image but could not be read; it may be "
            "damaged or incomplete. Try exporting or saving it again.",
        ) from exc
    if image.format not in _PILLOW_FORMATS[kind]:
        image.close()
        raise ImageRejected(
            "image_unsupported_type",
            f"The file is not a valid {ACCEPTED} image. Upload one of those.",
        )
    return image


def _pillow_name(kind: str) -> str:
    return {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}[kind]


def _check_dimensions(size: tuple[int, int], *, max_pixels: int, min_side: int) -> None:
    width, height = size
    if width * height > max_pixels:
        megapixels = max_pixels / 1_000_000
        raise ImageRejected(
            "image_too_many_pixels",
            f"The image is {width}×{height} pixels; the limit is {megapixels:g} megapixels "
            f"({_example_size(max_pixels)}). Resize it and try again.",
        )
    if min(width, height) < min_side:
        raise ImageRejected(
            "image_too_small",
            f"The image is {width}×{height} pixels; each side must be at least {min_side} "
            "pixels. Use a larger image.",
        )


def _reencode(image: Image.Image) -> CleanImage:
    # Apply the EXIF orientation before the EXIF goes, or portrait photos turn sideways.
    # A broken EXIF block should not cost the user their upload, so failures keep the pixels.
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:
        log.info("ignoring unreadable EXIF orientation", exc_info=True)

    alpha = _has_alpha(image)
    image = _to_srgb(image, "RGBA" if alpha else "RGB")
    if alpha and image.getchannel("A").getextrema() == (255, 255):
        # An alpha channel that is opaque everywhere (common in exported screenshots) buys
        # nothing; JPEG is several times smaller than PNG for the same photo.
        image, alpha = image.convert("RGB"), False
    # Nothing from the source's info (ICC, comments, text chunks, EXIF) may reach the encoder:
    # Pillow's savers fall back to image.info for some of them.
    image.info = {}

    out = io.BytesIO()
    if alpha:
        image.save(out, format="PNG")
        content_type, extension = "image/png", "png"
    else:
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        content_type, extension = "image/jpeg", "jpg"
    return CleanImage(
        content=out.getvalue(),
        content_type=content_type,
        extension=extension,
        width=image.width,
        height=image.height,
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _to_srgb(image: Image.Image, mode: str) -> Image.Image:
    """Convert to 8-bit RGB(A), honouring an embedded colour profile before it is stripped.

    Without this, wide-gamut (Display P3) phone photos and CMYK JPEGs would change colour once
    their profile is gone.
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit greyscale PNG: plain convert() clips to white; scale to 8 bits instead.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode=mode
            )
            if converted is not None:
                return converted
        except Exception:
            # A profile that does not match the pixels (or is malformed) is ignored, not fatal.
            log.info("ignoring unusable ICC profile", exc_info=True)
    return image.convert(mode)


def _example_size(max_pixels: int) -> str:
    # A 16:10 example ("e.g. 8000×5000") is easier to act on than a bare pixel count.
    width = int((max_pixels * 16 / 10) ** 0.5) // 100 * 100
    height = int(width * 10 / 16)
    return f"e.g. {width}×{height}"


def _human_bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MB"
    if count >= 1024:
        return f"{count / 1024:g} KB"
    return f"{count} bytes"
