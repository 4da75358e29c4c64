"""Reuse before paying twice: the same request by the same user finds the clip it made.

Two requests are the same when endpoint, provider arguments (prompt, negative prompt, shape,
length, quality and seed included), motion preset and input files are: the digest below.
Without a given seed every render draws a new one, so only a repeated seed can match, which is
exactly when a new render would make the same clip again.
"""

import hashlib
import json
from collections.abc import Iterable

from generation.models import Generation, State

# A row in these states made (or is making) nothing to reuse.
NOT_REUSABLE = (State.FAILED, State.CANCELED, State.BLOCKED)


def request_digest(
    *, endpoint_id: str, arguments: dict, preset: str, files: Iterable[bytes] = ()
) -> str:
    """sha256 of the request in a canonical form (sorted keys, file contents by their own
    sha256, in order)."""
    document = {
        "endpoint": endpoint_id,
        "arguments": arguments,
        "preset": preset,
        "files": [hashlib.sha256(content).hexdigest() for content in files],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_digest_bytes(path) -> bytes:
    """A large input (a video) by its sha256, read in blocks, as bytes for request_digest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def existing_clip(*, user, digest: str) -> Generation | None:
    """The user's newest render of this exact request that succeeded or is still being made,
    not deleted and not taken down by moderators."""
    if not digest:
        return None
    return (
        Generation.objects.visible_to(user)
        .filter(request_digest=digest, takedown__isnull=True)
        .exclude(state__in=NOT_REUSABLE)
        .order_by("-created_at")
        .first()
    )
