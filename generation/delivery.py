"""Handing stored media to the people allowed to see it: short-lived signed URLs.

The owner-checked view (views.media_file) decides WHO may see a file; this module turns the
decision into a link that works for SIGNED_URL_TTL seconds and for that one file only:

* on S3 (or any S3-compatible store) a presigned GET URL, with the response's Content-Type,
  Content-Disposition and Cache-Control fixed by the signature; the bucket stays private;
* on the filesystem a URL of our own signed view (media_signed), whose token is a
  django.core.signing timestamped signature over the storage name and response headers.

Both are bearer links, like presigned URLs are: whoever holds one can fetch that file until
it expires. That is what lets the <video> element, a download and an API client without a
session use the same link; the link is only ever handed out after the owner check.

file_response() serves a stored file with HTTP Range support (206 / 416), so video players
can seek without downloading the whole file.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import content_disposition_header, quote_etag

SALT = "generation.delivery.media"
STREAM_CHUNK = 64 * 1024
# At most 19 digits a side (any file's size fits): a 5,000-digit position made int() raise
# ValueError (Python's int max str digits), a 500; a longer one is a malformed header, ignored.
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def is_s3(storage=default_storage) -> bool:
    """True for django-storages' S3Storage (and subclasses). Does not import boto3 when the
    storage is something else (that costs ~12 MB of RSS in a worker)."""
    cls = storage.__class__  # on the lazy default_storage this sets up the real storage
    module = sys.modules.get("storages.backends.s3")
    return module is not None and issubclass(cls, module.S3Storage)


@dataclass(frozen=True)
class SignedFile:
    name: str
    content_type: str
    filename: str  # the name a download is saved under; "" for inline files
    download: bool
    # The generation whose output this is (checked for a take-down on every request); None
    # for inputs, which stay visible to their owner.
    generation_id: str | None = None


def signed_url(
    name: str,
    *,
    content_type: str,
    filename: str = "",
    download: bool = False,
    generation_id=None,
) -> str:
    """A URL that serves the stored file `name` for SIGNED_URL_TTL seconds, to whoever has it.

    generation_id: the output's generation, so the filesystem view refuses the link as soon as
    moderators take it down. A presigned S3 URL cannot be revoked: output_take_down hides the
    object instead (media.output_hide), and SIGNED_URL_TTL keeps such links short-lived.
    """
    disposition = content_disposition_header(download, filename or None) or "inline"
    if is_s3():
        return default_storage.url(
            name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
                "ResponseCacheControl": f"private, max-age={settings.SIGNED_URL_TTL}",
            },
            expire=settings.SIGNED_URL_TTL,
        )
    # Not compressed: zlib saves nothing on a payload this small, and a listing makes two
    # links per row. verify_token reads compressed tokens too.
    payload = {"n": name, "t": content_type, "f": filename, "d": download}
    if generation_id is not None:
        payload["g"] = str(generation_id)
    token = signing.dumps(payload, salt=SALT)
    return _signed_view_url(token)


_SLOT = "SLOT"
_url_templates: dict[tuple, tuple[str, str]] = {}


def _signed_view_url(token: str) -> str:
    """reverse("media_signed", args=[token]), resolved once per URLconf and script prefix."""
    key = (get_urlconf(), get_script_prefix())
    parts = _url_templates.get(key)
    if parts is None:
        before, _, after = reverse("media_signed", args=[_SLOT]).partition(_SLOT)
        parts = _url_templates[key] = (before, after)
    # Tokens are base64url and ':' only, which reverse() leaves as they are.
    return f"{parts[0]}{token}{parts[1]}"


class BadToken(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def verify_token(token: str) -> SignedFile:
    """The file a token from signed_url() names; BadToken if altered or expired."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.SIGNED_URL_TTL)
    except signing.SignatureExpired:
        raise BadToken("This media link has expired. Reload the page for a fresh one.") from None
    except signing.BadSignature:
        raise BadToken("This media link is not valid.") from None
    return SignedFile(
        name=data["n"],
        content_type=data["t"],
        filename=data["f"],
        download=data["d"],
        generation_id=data.get("g"),
    )


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """One byte range from a Range header: (first, last) inclusive, None for the whole file
    (no header, a unit we do not know, or several ranges), "unsatisfiable" for a 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # multiple ranges or another unit: RFC 9110 lets us send the whole file
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # "bytes=-500": the last 500 bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid range spec: ignore it
    if start >= size:
        return "unsatisfiable"
    return start, end


def file_response(request, signed: SignedFile) -> HttpResponse:
    """Serve a stored file with Range support, streaming it in chunks."""
    try:
        size = default_storage.size(signed.name)
        modified = default_storage.get_modified_time(signed.name)
    except (FileNotFoundError, OSError):
        raise Http404("The file is no longer stored.") from None
    etag = quote_etag(
        hashlib.sha256(f"{signed.name}:{size}:{modified.timestamp()}".encode()).hexdigest()[:32]
    )
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": f"private, max-age={settings.SIGNED_URL_TTL}",
        "Content-Disposition": (
            content_disposition_header(signed.download, signed.filename or None) or "inline"
        ),
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return HttpResponse(status=304, headers=headers)

    wanted = parse_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if if_range and if_range != etag:
        wanted = None  # the client's copy is stale: send the whole current file
    if wanted == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{size}"
        return HttpResponse(status=416, headers=headers, content_type="text/plain")
    if wanted is None:
        first, last, status = 0, size - 1, 200
    else:
        (first, last), status = wanted, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(last - first + 1, 0)
    headers["Content-Length"] = str(length)
    handle = default_storage.open(signed.name, "rb")
    response = StreamingHttpResponse(
        _read(handle, first, length), status=status, content_type=signed.content_type
    )
    for key, value in headers.items():
        response[key] = value
    # Closed with the response even if the body is never iterated (HEAD, a dropped client).
    response._resource_closers.append(handle.close)
    return response


def _read(handle, offset: int, length: int) -> Iterator[bytes]:
    try:
        if offset:
            handle.seek(offset)
        while length > 0:
            chunk = handle.read(min(STREAM_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()
