"""Waiting without polling (issue 19 item 4): `Prefer: wait=N`, the SSE event stream, ETags.

A wait holds a web worker (a sync gunicorn worker does nothing else meanwhile), so waits are
bounded twice: at most API_MAX_WAIT_SECONDS each, and at most API_MAX_WAITS_PER_KEY at once per
API key (or signed-in user), counted across processes (api.ratelimit.slot_take). A wait over
the bound is not refused: `Prefer` is a preference (RFC 7240), so the answer comes at once,
without `Preference-Applied`. An event stream over the bound is a 429 with Retry-After.

While waiting, the row is read again every 0.25 s, backing off to every 2 s: one indexed
primary-key read, no lock. The request counts once against the per-minute rate limit, however
long it waits, so a client that waits spends one request where polling at 2 Hz spent sixty.
"""

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime
from rest_framework.utils.encoders import JSONEncoder

from api import ratelimit
from api.models import ApiKey

_WAIT = re.compile(r"(?:^|[,;])\s*wait\s*=\s*\"?(\d{1,6})\"?\s*(?:[,;]|$)", re.IGNORECASE)
FIRST_DELAY, MAX_DELAY = 0.25, 2.0
# How long before its links expire a cached copy stops being "not modified".
FRESH_ENOUGH_SECONDS = 30

# The waits' clock and sleep, module attributes so that a test can step time instead of
# spending it (tests/api/test_waiting.py).
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def preferred_wait(request) -> int | None:
    """The seconds asked for with `Prefer: wait=N` (RFC 7240 §4.3), capped; None if none."""
    for header in request.headers.get("Prefer", "").split(","):
        match = _WAIT.search(header.strip())
        if match and int(match.group(1)) > 0:
            return min(int(match.group(1)), settings.API_MAX_WAIT_SECONDS)
    return None


def _bucket(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"wait:key:{request.auth.pk}"
    return f"wait:user:{request.user.pk}"


class WaitSlot:
    """One of the caller's concurrent wait slots: `take()` says whether one was free; `free()`
    gives it back (once, however often called). As a context manager it yields whether it got
    one, and frees it on leaving."""

    def __init__(self, request):
        self.bucket = _bucket(request)
        self.window = None

    def take(self) -> bool:
        self.window = ratelimit.slot_take(self.bucket, limit=settings.API_MAX_WAITS_PER_KEY)
        return self.window is not None

    def free(self) -> None:
        if self.window is not None:
            ratelimit.slot_free(self.bucket, self.window)
            self.window = None

    def __enter__(self) -> bool:
        return self.take()

    def __exit__(self, *exc) -> None:
        self.free()


def wait_until_ended(load: Callable, seconds: float):
    """`load()` again and again until what it returns has ended or `seconds` pass."""
    deadline = clock() + seconds
    delay = FIRST_DELAY
    generation = load()
    while not generation.is_terminal and clock() < deadline:
        sleep(max(0.0, min(delay, deadline - clock())))
        delay = min(delay * 2, MAX_DELAY)
        generation = load()
    return generation


def event_stream(load: Callable, render: Callable, seconds: float) -> Iterator[str]:
    """Server-sent events: the generation document each time it changes, until it ends or
    `seconds` pass (then the client reconnects). A comment line every 15 s keeps proxies from
    closing a quiet stream."""
    deadline = clock() + seconds
    last_tag, number, quiet_since = None, 0, clock()
    delay = FIRST_DELAY
    while True:
        generation = load()
        document = render(generation)
        tag = etag(document)
        if tag != last_tag:
            number += 1
            last_tag, quiet_since = tag, clock()
            yield f"id: {number}\nevent: generation\ndata: {_json(document)}\n\n"
        elif clock() - quiet_since >= 15:
            quiet_since = clock()
            yield ": still waiting\n\n"
        if generation.is_terminal:
            yield "event: end\ndata: {}\n\n"
            return
        if clock() >= deadline:
            yield f"event: timeout\ndata: {json.dumps({'retry_after': 0})}\n\n"
            return
        sleep(max(0.0, min(delay, deadline - clock())))
        delay = min(delay * 2, MAX_DELAY)


def _json(document: dict, **options) -> str:
    """As the API renders it (DRF's encoder: dates as ISO 8601 with Z)."""
    return json.dumps(document, cls=JSONEncoder, **options)


# --- ETags ----------------------------------------------------------------------------------
# The document's signed links change every second (they carry a signing time), so the tag
# hashes the document without them, and carries the links' expiry: a copy whose links are
# about to expire is never "not modified" (the client needs fresh ones).
_SIGNED = ("video_url", "poster_url", "expires_in", "expires_at")


def etag(document: dict) -> str:
    output = document.get("output")
    stable = {
        **document,
        "output": None if output is None else {k: v for k, v in output.items() if k not in _SIGNED},
    }
    digest = hashlib.sha256(_json(stable, sort_keys=True).encode()).hexdigest()[:24]
    expiry = 0
    if output is not None:
        moment = parse_datetime(output["expires_at"])
        expiry = int(moment.timestamp()) if moment else 0
    return f'W/"{digest}.{expiry}"'


def matching_tag(request, document: dict) -> str | None:
    """The client's If-None-Match tag that still describes `document`, if any."""
    header = request.headers.get("If-None-Match")
    if not header:
        return None
    ours = etag(document).removeprefix("W/").strip('"').split(".")[0]
    now = datetime.now(UTC).timestamp()
    for raw in header.split(","):
        tag = raw.strip()
        digest, _, expiry = tag.removeprefix("W/").strip('"').partition(".")
        if digest != ours or not expiry.isdigit():
            continue
        if int(expiry) == 0 or int(expiry) - now > FRESH_ENOUGH_SECONDS:
            return tag
    return None
