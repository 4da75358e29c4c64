"""The provider circuit: stop sending jobs to a provider that cannot take them.

fal locks an account whose balance ran out (403 "User is locked" on every call, for a while
even after a top-up), and an outage answers 5xx to everything. Submitting then only fails
jobs, so instead:

- a locked account opens the circuit at once; PROVIDER_CIRCUIT_FAILURES infrastructure
  failures within PROVIDER_CIRCUIT_WINDOW_SECONDS open it too;
- while it is open, queued jobs stay queued (their credits held, nothing charged: the hold is
  settled only when a job ends) and the site tells their owners so; staff get one email;
- every PROVIDER_PROBE_SECONDS one queued job is let through as a probe: if the provider takes
  it, the circuit closes (staff are told) and the others follow at once; if not, it waits again;
- a job that stays queued past PROVIDER_QUEUE_TIMEOUT_SECONDS is failed by the reaper and its
  credits released (workflows.tracking).

The state is one row per backend (ProviderCircuit). Submitting reads it through a cache of a
couple of seconds per process, so the hot path costs no query.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from core.alerts import staff_alert
from generation.backends import ProviderError

from .models import ProviderCircuit

log = logging.getLogger(__name__)

LOCKED_CODE = "provider_locked"
CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, datetime | None]] = {}


def circuit_forget() -> None:
    """Drop this process's cached circuit states (tests; after this process changed one)."""
    _cache.clear()


def provider_paused(backend: str) -> datetime | None:
    """When the next probe may go, if submissions to `backend` are paused; None otherwise."""
    clock = time.monotonic()
    cached = _cache.get(backend)
    if cached is not None and clock - cached[0] < CACHE_SECONDS:
        return cached[1]
    row = ProviderCircuit.objects.filter(backend=backend, state=ProviderCircuit.State.OPEN)
    probe_at = row.values_list("probe_at", flat=True).first()
    _cache[backend] = (clock, probe_at)
    return probe_at


def circuit_probe_claim(backend: str, *, now: datetime | None = None) -> bool:
    """True for the one caller that may send a probe now (the probe time has come)."""
    now = now or timezone.now()
    won = ProviderCircuit.objects.filter(
        backend=backend, state=ProviderCircuit.State.OPEN, probe_at__lte=now
    ).update(probe_at=now + timedelta(seconds=settings.PROVIDER_PROBE_SECONDS), updated_at=now)
    _cache.pop(backend, None)
    return won == 1


def counts_against_provider(exc: ProviderError) -> bool:
    """A failure that says the provider cannot take jobs, not that this job is bad."""
    return exc.code == LOCKED_CODE or (exc.retryable and exc.code != "bad_provider_response")


def circuit_failure(backend: str, exc: ProviderError, *, now: datetime | None = None) -> bool:
    """Count a provider failure; open the circuit when it says so. True if this call opened it."""
    now = now or timezone.now()
    ProviderCircuit.objects.get_or_create(backend=backend)
    if exc.code != LOCKED_CODE:
        window_start = now - timedelta(seconds=settings.PROVIDER_CIRCUIT_WINDOW_SECONDS)
        rows = ProviderCircuit.objects.filter(backend=backend, state=ProviderCircuit.State.CLOSED)
        # A failure after a quiet spell starts a new window; one inside it adds to the count.
        rows.filter(window_started_at__lt=window_start).update(
            window_started_at=now, window_failures=0
        )
        rows.filter(window_started_at__isnull=True).update(window_started_at=now, window_failures=0)
        rows.update(window_failures=F("window_failures") + 1, updated_at=now)
        failures = (
            ProviderCircuit.objects.filter(backend=backend)
            .values_list("window_failures", flat=True)
            .get()
        )
        if failures < settings.PROVIDER_CIRCUIT_FAILURES:
            return False
    opened = ProviderCircuit.objects.filter(
        backend=backend, state=ProviderCircuit.State.CLOSED
    ).update(
        state=ProviderCircuit.State.OPEN,
        reason=f"{exc.code}: {exc.message}"[:2000],
        opened_at=now,
        probe_at=now + timedelta(seconds=settings.PROVIDER_PROBE_SECONDS),
        window_started_at=None,
        window_failures=0,
        updated_at=now,
    )
    _cache.pop(backend, None)
    if opened:
        log.error("provider circuit for %s opened: %s", backend, exc)
        staff_alert(
            subject=f"Submissions to {backend} are paused",
            message=(
                f"The provider answered: {exc.message} ({exc.code}).\n\n"
                "New and queued jobs wait with their credits held; nothing is charged. One "
                f"probe job goes every {settings.PROVIDER_PROBE_SECONDS} s, and submissions "
                "resume by themselves when the provider takes it. Jobs queued longer than "
                f"{settings.PROVIDER_QUEUE_TIMEOUT_SECONDS} s are failed and refunded.\n\n"
                "If the account is locked, top up the fal balance."
            ),
        )
    return bool(opened)


def circuit_success(backend: str, *, now: datetime | None = None) -> bool:
    """The provider took a job: close the circuit if it was open. True if this call closed it."""
    now = now or timezone.now()
    closed = ProviderCircuit.objects.filter(
        backend=backend, state=ProviderCircuit.State.OPEN
    ).update(
        state=ProviderCircuit.State.CLOSED,
        reason="",
        opened_at=None,
        probe_at=None,
        updated_at=now,
    )
    _cache.pop(backend, None)
    if closed:
        log.warning("provider circuit for %s closed: a probe went through", backend)
        staff_alert(
            subject=f"Submissions to {backend} have resumed",
            message="A probe job went through; queued jobs are being submitted again.",
        )
    return bool(closed)


PAUSED_NOTICE = (
    "The video provider is paused for the moment. Your credits are held and nothing is "
    "charged; your video starts as soon as the provider is back."
)
