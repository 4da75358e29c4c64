"""generation.images.clean_image: what we accept, what we refuse, and what we strip.

Framework-free: no Django, no database.
"""

import contextlib
import io
import random
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from generation.images import CleanImage, ImageRejected, clean_image

MB = 1024 * 1024
LIMITS = {"max_bytes": 10 * MB, "max_pixels": 40_000_000}


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def photo(size=(160, 120), mode="RGB") -> Image.Image:
    """A noisy image, so encoders cannot make it trivially small."""
    rng = np.random.default_rng(1)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def reopen(result: CleanImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.content))
    image.load()
    return image


def refused(data, **overrides) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        clean_image(data, **{**LIMITS, **overrides})
    return info.value


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares huge dimensions but carries only a few KB of pixel data.

    The classic decompression bomb: cheap to send, gigabytes once decoded.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\0" * (width + 1) * 100, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "expected_type", "expected_ext"),
    [
        ("JPEG", "RGB", "image/jpeg", "jpg"),
        ("PNG", "RGB", "image/jpeg", "jpg"),
        ("PNG", "RGBA", "image/png", "png"),
        ("WEBP", "RGB", "image/jpeg", "jpg"),
        ("WEBP", "RGBA", "image/png", "png"),
    ],
)
def test_valid_images_are_accepted_and_reencoded(fmt, mode, expected_type, expected_ext):
    source = encode(photo(mode=mode), fmt)
    result = clean_image(source, **LIMITS)
    assert (result.content_type, result.extension) == (expected_type, expected_ext)
    assert (result.width, result.height) == (160, 120)
    # (a clean RGBA PNG may legitimately come back byte-identical: it is re-encoded the same way)
    decoded = reopen(result)
    assert decoded.format == expected_ext.replace("jpg", "jpeg").upper()
    assert decoded.size == (160, 120)
    assert decoded.mode == ("RGBA" if expected_ext == "png" else "RGB")


def test_accepts_a_stream_and_ignores_its_name():
    stream = io.BytesIO(encode(photo(), "PNG"))
    stream.name = "holiday.gif"
    assert clean_image(stream, **LIMITS).content_type == "image/jpeg"


@pytest.mark.parametrize(
    "image",
    [
        Image.new("P", (80, 80)),
        Image.new("L", (80, 80), 128),
        Image.new("1", (80, 80), 1),
        Image.new("CMYK", (80, 80), (0, 255, 255, 0)),
    ],
    ids=["palette", "grey", "bilevel", "cmyk"],
)
def test_other_modes_become_rgb_jpeg(image):
    fmt = "JPEG" if image.mode == "CMYK" else "PNG"
    result = clean_image(encode(image, fmt), **LIMITS)
    assert result.content_type == "image/jpeg"
    assert reopen(result).mode == "RGB"


def test_cmyk_jpeg_keeps_its_colour():
    red = Image.new("CMYK", (80, 80), (0, 255, 255, 0))
    r, g, b = reopen(clean_image(encode(red, "JPEG"), **LIMITS)).getpixel((40, 40))
    assert r > 200 and g < 60 and b < 60


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    ramp = (np.arange(100 * 80, dtype=np.uint16).reshape(80, 100) * 8).astype(np.uint16)
    result = clean_image(encode(Image.fromarray(ramp), "PNG"), **LIMITS)
    low, high = reopen(result).convert("L").getextrema()
    assert low < 10 and 200 < high < 256
    assert reopen(result).convert("L").getpixel((0, 0)) < 10  # a white image would be 255


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (80, 80), (255, 0, 0, 100)),
        Image.new("LA", (80, 80), (128, 100)),
        Image.new("P", (80, 80)),  # with a transparent palette entry, below
    ],
    ids=["rgba", "la", "palette-transparency"],
)
def test_alpha_png_stays_png_with_its_alpha(image):
    params = {"transparency": 0} if image.mode == "P" else {}
    result = clean_image(encode(image, "PNG", **params), **LIMITS)
    assert (result.content_type, result.extension) == ("image/png", "png")
    decoded = reopen(result)
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((5, 5))[3] < 255


def test_fully_opaque_alpha_is_stored_as_jpeg():
    result = clean_image(encode(Image.new("RGBA", (80, 80), (0, 0, 255, 255)), "PNG"), **LIMITS)
    assert result.content_type == "image/jpeg"


def test_animated_webp_keeps_the_first_frame_only():
    frames = [Image.new("RGB", (80, 80), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    source = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert Image.open(io.BytesIO(source)).n_frames == 2
    result = clean_image(source, **LIMITS)
    r, g, b = reopen(result).getpixel((40, 40))
    assert r > 200 and b < 60
    assert getattr(reopen(result), "n_frames", 1) == 1


def test_multi_picture_jpeg_from_a_phone_is_accepted_as_jpeg():
    frames = [Image.new("RGB", (80, 80), (0, 200, 0)), Image.new("RGB", (80, 80), (9, 9, 9))]
    source = encode(frames[0], "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(source)).format == "MPO"
    result = clean_image(source, **LIMITS)
    assert result.content_type == "image/jpeg"
    assert reopen(result).getpixel((40, 40))[1] > 150


# --- refused by type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"hello, I am a text file\n",
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script/></svg>',
        b'  \n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>',
        b"PK\x03\x04" + b"\0" * 40,
        b"\x00\x00\x00\x18ftypheic" + b"\0" * 40,
        b"RIFF\x10\x00\x00\x00WAVEfmt ",  # RIFF, but not WebP
        b"\x89PNX\r\n\x1a\n" + b"\0" * 40,  # almost a PNG signature
    ],
    ids=["text", "html", "pdf", "svg", "svg-leading-space", "zip", "heic", "wav", "near-png"],
)
def test_non_images_named_png_are_refused(content):
    stream = io.BytesIO(content)
    stream.name = "photo.png"
    error = refused(stream)
    assert error.code == "image_unsupported_type"
    assert "JPEG, PNG or WebP" in str(error)


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")])
def test_other_image_formats_are_refused_with_the_accepted_list(fmt, name):
    error = refused(encode(photo(), fmt))
    assert error.code == "image_unsupported_type"
    assert name in str(error)
    assert "JPEG, PNG or WebP" in str(error)


def test_jpeg_magic_with_a_png_body_is_refused():
    # Magic bytes and Pillow's parser must agree; a PNG with a JPEG prefix is neither.
    error = refused(b"\xff\xd8\xff" + encode(photo(), "PNG"))
    assert error.code in ("image_corrupt", "image_unsupported_type")


# --- refused by size ------------------------------------------------------------------------


def test_decompression_bomb_png_is_refused_from_its_header():
    bomb = png_header_only(20000, 20000)
    assert len(bomb) < 10_000
    error = refused(bomb)
    assert error.code == "image_too_many_pixels"
    assert "40-megapixel" in str(error)


def test_header_over_our_cap_but_under_pillows_names_the_dimensions():
    error = refused(png_header_only(9000, 9000))
    assert error.code == "image_too_many_pixels"
    assert "9000×9000" in str(error)
    assert "40 megapixels (e.g. 8000×5000)" in str(error)


def test_pillows_own_bomb_guard_is_a_refusal_even_when_our_cap_is_higher():
    error = refused(png_header_only(20000, 20000), max_pixels=10**12)
    assert error.code == "image_too_many_pixels"


def test_pillows_bomb_warning_turned_error_is_a_refusal():
    # 10000×10000 is over MAX_IMAGE_PIXELS (warning) but under twice it (error).
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        error = refused(png_header_only(10000, 10000), max_pixels=10**12)
    assert error.code == "image_too_many_pixels"


def test_exactly_max_pixels_is_accepted_and_one_more_refused():
    source = encode(Image.new("RGB", (100, 100)), "PNG")
    assert clean_image(source, max_bytes=MB, max_pixels=10_000).width == 100
    assert refused(source, max_pixels=9_999).code == "image_too_many_pixels"


def test_exactly_max_bytes_is_accepted_and_one_byte_over_refused():
    source = encode(photo(), "JPEG")
    assert clean_image(source, max_bytes=len(source), max_pixels=10**6).width == 160
    error = refused(source, max_bytes=len(source) - 1)
    assert error.code == "image_too_large_bytes"
    error = refused(io.BytesIO(source), max_bytes=len(source) - 1)
    assert error.code == "image_too_large_bytes"
    assert clean_image(io.BytesIO(source), max_bytes=len(source), max_pixels=10**6).width == 160


class EndlessStream(io.RawIOBase):
    """Never reaches EOF and hands out short reads, like a slow network upload."""

    def __init__(self):
        self.served = 0

    def readable(self):
        return True

    def read(self, size=-1):
        assert size is not None and size > 0, "must never read without a limit"
        chunk = b"\xff" * min(size, 1000)
        self.served += len(chunk)
        return chunk


def test_stream_is_read_only_to_one_byte_past_the_cap():
    stream = EndlessStream()
    assert refused(stream, max_bytes=5000).code == "image_too_large_bytes"
    assert stream.served == 5001


def test_tiny_image_is_refused():
    error = refused(encode(Image.new("RGB", (63, 200)), "PNG"))
    assert error.code == "image_too_small"
    assert "63×200" in str(error) and "64" in str(error)
    assert clean_image(encode(Image.new("RGB", (64, 64)), "PNG"), **LIMITS).width == 64


def test_empty_file_is_refused():
    assert refused(b"").code == "image_corrupt"


# --- refused as damaged ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_refused(fmt):
    source = encode(photo((400, 300)), fmt)
    error = refused(source[: len(source) // 2])
    assert error.code == "image_corrupt"
    assert "damaged or incomplete" in str(error)


@pytest.mark.parametrize(
    "content",
    [b"\xff\xd8\xff" + b"\0" * 100, b"\x89PNG\r\n\x1a\n" + b"\xff" * 100, b"RIFF\0\0\0\0WEBPVP8 "],
    ids=["jpeg", "png", "webp"],
)
def test_magic_bytes_followed_by_garbage_are_refused(content):
    assert refused(content).code == "image_corrupt"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_randomly_corrupted_files_never_crash(fmt):
    # Malformed input must end as a clean result or an ImageRejected, never another exception.
    source = bytearray(encode(photo((96, 96)), fmt))
    rng = random.Random(fmt)
    for _ in range(60):
        damaged = bytearray(source)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(ImageRejected):
            clean_image(bytes(damaged), **LIMITS)


# --- metadata -------------------------------------------------------------------------------


def jpeg_with_exif(orientation: int | None = None, image: Image.Image | None = None) -> bytes:
    image = image or photo()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam Industries"
    exif[ExifTags.Base.Model] = "Serial-12345"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 0.0)
    return encode(image, "JPEG", exif=exif.tobytes(), comment=b"home address here")


def test_exif_make_and_gps_are_stripped_from_jpeg():
    source = jpeg_with_exif()
    before = Image.open(io.BytesIO(source)).getexif()
    assert before[ExifTags.Base.Make] == "SpyCam Industries"  # the fixture really has them
    assert before.get_ifd(ExifTags.IFD.GPSInfo)
    result = clean_image(source, **LIMITS)
    after = reopen(result)
    assert not after.getexif()
    assert "exif" not in after.info and "comment" not in after.info
    for secret in (b"Exif", b"SpyCam", b"Serial-12345", b"home address"):
        assert secret not in result.content


def test_exif_is_stripped_from_png_and_webp_too():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam Industries"
    for fmt in ("PNG", "WEBP"):
        result = clean_image(encode(photo(), fmt, exif=exif.tobytes()), **LIMITS)
        assert b"SpyCam" not in result.content
        assert not reopen(result).getexif()


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_png_text_chunks_are_stripped(mode):
    info = PngInfo()
    info.add_text("Comment", "secret-location-text")
    info.add_text("Author", "secret-author-ztxt", zip=True)
    info.add_itxt("Description", "secret-itxt-ünïcode")
    source = encode(photo(mode=mode), "PNG", pnginfo=info)
    assert b"tEXt" in source and b"secret-location" in source
    result = clean_image(source, **LIMITS)
    for marker in (b"tEXt", b"zTXt", b"iTXt", b"secret"):
        assert marker not in result.content
    assert not reopen(result).info.get("Comment")


def test_icc_profile_is_applied_then_stripped():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for fmt, mode in (("JPEG", "RGB"), ("PNG", "RGBA")):
        result = clean_image(encode(photo(mode=mode), fmt, icc_profile=profile), **LIMITS)
        assert "icc_profile" not in reopen(result).info


def test_exif_orientation_is_applied_before_stripping():
    # 128×64, left half red and right half blue; orientation 6 means "rotate 90° clockwise".
    image = Image.new("RGB", (128, 64), (255, 0, 0))
    image.paste((0, 0, 255), (64, 0, 128, 64))
    result = clean_image(jpeg_with_exif(orientation=6, image=image), **LIMITS)
    assert (result.width, result.height) == (64, 128)
    decoded = reopen(result)
    assert decoded.size == (64, 128)
    top, bottom = decoded.getpixel((32, 16)), decoded.getpixel((32, 112))
    assert top[0] > 200 and top[2] < 60  # red now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert not decoded.getexif()


def test_tiny_orientation_example_from_the_brief():
    # A 2×1 image with orientation 6 becomes 1×2 (min_side lowered so it is allowed at all).
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    source = encode(Image.new("RGB", (2, 1)), "JPEG", exif=exif.tobytes())
    result = clean_image(source, max_bytes=MB, max_pixels=100, min_side=1)
    assert (result.width, result.height) == (1, 2)


@pytest.mark.filterwarnings("ignore:.*:UserWarning")  # Pillow complains about the EXIF
def test_broken_exif_does_not_cost_the_upload():
    source = bytearray(jpeg_with_exif(orientation=6))
    start = source.index(b"Exif\0\0") + 6
    source[start + 8 : start + 40] = b"\xff" * 32  # smash the IFD
    result = clean_image(bytes(source), **LIMITS)
    assert result.content_type == "image/jpeg"
    assert b"SpyCam" not in result.content
