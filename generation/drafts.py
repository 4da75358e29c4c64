"""The image a person chose on the generate page, kept across a form error.

A browser cannot put a file back into a file input, so when the form comes back with an error
the image is kept on our side: cleaned like any input (images.clean_image), stored under
drafts/<user id>/ and named in the page by a signed token bound to that user. The next submit
without a new file uses it; the page shows it as a thumbnail through draft_image.
"""

import uuid

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from .images import ImageRejected, clean_image

SALT = "generation.drafts"
MAX_AGE = 6 * 3600  # seconds a kept image stays usable


def draft_save(*, user, upload) -> str | None:
    """Keep the upload; the token for the page, or None when the image is not usable anyway
    (then the form's own error says why)."""
    try:
        upload.seek(0)
        image = clean_image(
            upload, max_bytes=settings.IMAGE_MAX_BYTES, max_pixels=settings.IMAGE_MAX_PIXELS
        )
    except (ImageRejected, OSError, ValueError):
        return None
    name = default_storage.save(
        f"drafts/{user.pk}/{uuid.uuid4().hex}.{image.extension}", ContentFile(image.content)
    )
    return signing.dumps({"user": user.pk, "name": name, "type": image.content_type}, salt=SALT)


def draft_open(*, user, token: str) -> dict | None:
    """The kept image's {name, type} for this user, or None (bad, expired, someone else's)."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return None
    if data.get("user") != user.pk or not default_storage.exists(data["name"]):
        return None
    return data


def draft_read(draft: dict) -> bytes:
    with default_storage.open(draft["name"], "rb") as handle:
        return handle.read()


def draft_delete(draft: dict) -> None:
    default_storage.delete(draft["name"])
