"""Fixed-window counters shared by every process: Redis INCR when configured, else the database.

Never per-process memory: limits must hold however many web processes serve the API.
"""

import hashlib
import time
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from .models import RateCounter


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    window_seconds: int
    # This request is the first one over the limit in its window (always True for a refusal
    # when the database counts: it does not tell the first refusal from later ones).
    first_refused: bool = False

    def headers(self, policy_name: str) -> dict[str, str]:
        headers = {
            # draft-ietf-httpapi-ratelimit-headers: the policy and the current state.
            "RateLimit-Policy": f'"{policy_name}";q={self.limit};w={self.window_seconds}',
            "RateLimit": f'"{policy_name}";r={self.remaining};t={self.reset_seconds}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


# Prefixed to every bucket; tests set their own so that counters never leak between them.
NAMESPACE = "rl"


@cache
def _redis():
    import redis

    # redis-py's default pool raises once 100 connections are out; a burst of threads
    # should wait briefly for a connection instead of failing the request.
    pool = redis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=50, timeout=5)
    return redis.Redis(connection_pool=pool)


def hit(bucket: str, *, limit: int, window_seconds: int, now: float | None = None) -> Verdict:
    """Count one request against `bucket`; refuse it if the window already holds `limit`."""
    now = now or time.time()
    # Buckets can carry client-sent text (an IP from a header): bound their length.
    if len(bucket) > 80:
        bucket = hashlib.sha256(bucket.encode()).hexdigest()
    bucket = f"{settings.CACHE_KEY_PREFIX}:{NAMESPACE}:{bucket}"
    window_start = int(now // window_seconds) * window_seconds
    reset = max(1, int(window_start + window_seconds - now))
    if settings.REDIS_URL:
        key = f"{bucket}:{window_start}"
        pipe = _redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, window_seconds + 5)
        count = pipe.execute()[0]
        allowed = count <= limit
        used = min(count, limit)
        first_refused = count == limit + 1
    else:
        allowed = _db_increment(bucket, window_start, limit)
        used = (
            RateCounter.objects.filter(bucket=bucket, window_start=window_start)
            .values_list("count", flat=True)
            .first()
            or 0
        )
        first_refused = not allowed
    return Verdict(allowed, limit, max(0, limit - used), reset, window_seconds, first_refused)


def _db_increment(bucket: str, window_start: int, limit: int) -> bool:
    # A conditional UPDATE is atomic on SQLite and PostgreSQL alike: of N racing requests
    # exactly `limit` find count < limit.
    for _ in range(3):
        updated = RateCounter.objects.filter(
            bucket=bucket, window_start=window_start, count__lt=limit
        ).update(count=F("count") + 1)
        if updated:
            return True
        if RateCounter.objects.filter(bucket=bucket, window_start=window_start).exists():
            return False
        try:
            with transaction.atomic():
                RateCounter.objects.create(bucket=bucket, window_start=window_start, count=1)
            return limit >= 1
        except IntegrityError:
            continue  # another request created the window first: count against it
    return False


def prune(*, older_than_seconds: int = 3600) -> int:
    cutoff = int(time.time()) - older_than_seconds
    return RateCounter.objects.filter(window_start__lt=cutoff).delete()[0]


# --- Concurrent slots (long waits per key) ------------------------------------------------------
# A RateCounter row per bucket and ten-minute window, moved by conditional UPDATEs like the
# request counters: exact across processes on SQLite and PostgreSQL. A slot is freed in the
# window that took it; a process killed while holding one leaves it taken until its window
# ends (at most ten minutes), and at a window's start the older window's holders are not
# counted, so for the length of one wait up to twice the limit can be held.
SLOT_WINDOW_SECONDS = 600


def slot_take(bucket: str, *, limit: int, now: float | None = None) -> int | None:
    """Take one of `limit` concurrent slots of `bucket`; the window to free it in, or None."""
    window_start = int((now or time.time()) // SLOT_WINDOW_SECONDS) * SLOT_WINDOW_SECONDS
    bucket = f"{settings.CACHE_KEY_PREFIX}:{NAMESPACE}:slot:{bucket}"
    return window_start if _db_increment(bucket, window_start, limit) else None


def slot_free(bucket: str, window_start: int) -> None:
    bucket = f"{settings.CACHE_KEY_PREFIX}:{NAMESPACE}:slot:{bucket}"
    RateCounter.objects.filter(bucket=bucket, window_start=window_start, count__gt=0).update(
        count=F("count") - 1
    )
