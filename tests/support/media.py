"""Small real media files for tests."""

import io

from PIL import Image


def png_bytes(width: int = 320, height: int = 240, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type=content_type)


def stored_credentials(name: str):
    """The C2PA credentials of a file in default_storage (filesystem or S3), read back by
    c2pa-python through generation.provenance; None when it carries no manifest."""
    import os
    import shutil
    import tempfile

    from django.core.files.storage import default_storage

    from generation.provenance import read_credentials

    with tempfile.TemporaryDirectory() as scratch, default_storage.open(name, "rb") as handle:
        path = os.path.join(scratch, "stored.mp4")
        with open(path, "wb") as out:
            shutil.copyfileobj(handle, out)
        return read_credentials(path)
