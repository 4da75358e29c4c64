"""The worker side of a generation: submit, poll, finalize, retry, fail.

Each function claims its row with a conditional UPDATE before it does anything, so any number
of workers and trackers may call them for the same row at once; only one does the work.
None of them waits on the provider: each makes one quick call and records what it learned.
"""

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.conf import Conf

from core.queueing import enqueue
from generation import media
from generation.backends import SUBMIT_UNCONFIRMED, Completed, ProviderError, get_backend
from generation.leases import heartbeat
from generation.models import TERMINAL, Generation, State
from generation.polling import next_poll_at, poll_delay, retry_delay
from moderation.output_check import output_check, provider_refusal, wants_frames

from .circuit import (
    LOCKED_CODE,
    circuit_failure,
    circuit_probe_claim,
    circuit_success,
    counts_against_provider,
    provider_paused,
)
from .lifecycle import TRACKER, WORKER, Actor, generation_move
from .output_holds import output_hold

log = logging.getLogger(__name__)

# A finalize holds the row by its next_check_at, a lease its process renews every
# FINALIZE_BEAT_SECONDS while it copies and probes (generation/leases.py). A lease not renewed
# for FINALIZE_LEASE means the finalize died (on Redis its task is then lost): the tracker
# queues it again then. A live finalize renews for at most FINALIZE_LONGEST, the slowest copy
# (fal.DOWNLOAD_TIMEOUT, 10 min) plus probing and saving.
FINALIZE_LEASE = timedelta(seconds=30)
FINALIZE_BEAT_SECONDS = 5.0
FINALIZE_LONGEST = timedelta(minutes=12)
# A finalize still waiting in the broker's queue holds the row this long: nothing renews it,
# and a backlog (1000 jobs finishing in 20 s on two workers) can keep it waiting longer than
# FINALIZE_LEASE. With the short lease the tracker queued every waiting finalize again, at the
# back of the queue (the one near the front then found its lease gone and did nothing), which
# turned a backlog of seconds into minutes (benchmarks/README.md, inflight). A task lost before
# it started (rare: a broker message dropped) waits this long to be queued again.
FINALIZE_QUEUED = timedelta(minutes=5)


def webhook_url_for(generation: Generation) -> str | None:
    """fal's webhook for this row, naming its current submit attempt: a webhook for a submit
    whose answer was lost finds the row by that token (workflows.fal_webhooks)."""
    if not settings.PUBLIC_BASE_URL or generation.backend != "fal":
        return None
    url = f"{settings.PUBLIC_BASE_URL}/webhooks/fal/"
    return f"{url}?attempt={generation.submit_token}" if generation.submit_token else url


def generation_submit(
    *, generation_id, generation: Generation | None = None, actor: Actor = TRACKER
) -> bool:
    """Hand a queued generation to its backend. True if this call submitted it.

    The tracker passes the row it claimed, saving a read: what is sent (endpoint, arguments,
    inputs) does not change once a row is queued. While the provider circuit is open, the row
    stays queued until the next probe (workflows.circuit).
    """
    now = timezone.now()
    backend_name = (
        generation.backend
        if generation is not None
        else Generation.objects.values_list("backend", flat=True).filter(pk=generation_id).first()
    )
    if backend_name is None:
        return False
    probing = False
    probe_at = provider_paused(backend_name)
    if probe_at is not None:
        if not circuit_probe_claim(backend_name, now=now):
            # Paused: look at it again when the next probe may go.
            Generation.objects.filter(pk=generation_id, state=State.QUEUED).update(
                next_check_at=max(probe_at, now + PAUSED_RECHECK)
            )
            return False
        probing = True
    # The attempt is recorded before the POST: its token goes into the webhook URL, so a
    # submit whose answer is lost can still be matched to the job fal queued.
    token = secrets.token_hex(16)
    claimed = generation_move(
        generation_id=generation_id,
        to=State.SUBMITTING,
        actor=actor,
        attempts=F("attempts") + 1,
        next_check_at=None,
        submit_token=token,
    )
    if not claimed:
        return False
    if generation is None:
        generation = Generation.objects.get(pk=generation_id)
    generation.submit_token = token
    backend = get_backend(generation.backend)
    try:
        submitted = backend.submit(generation, webhook_url=webhook_url_for(generation))
    except ProviderError as exc:
        if counts_against_provider(exc):
            circuit_failure(backend_name, exc)
        if exc.code == SUBMIT_UNCONFIRMED:
            _submit_unconfirmed(generation, exc, actor=actor, now=now)
        elif exc.code == LOCKED_CODE:
            _wait_for_provider(generation_id, actor=actor, now=now)
        else:
            _failed(generation_id, exc, actor=actor)
        return False
    if probing:
        circuit_success(backend_name)
    recorded = {"arguments": submitted.arguments} if submitted.arguments else {}
    webhook = webhook_url_for(generation) is not None
    moved = generation_move(
        generation_id=generation_id,
        to=State.IN_QUEUE,
        actor=actor,
        **recorded,
        provider_request_id=submitted.request_id,
        gateway_request_id=submitted.gateway_request_id,
        provider_urls=submitted.urls,
        queue_position=submitted.queue_position,
        next_check_at=now + poll_delay(0, webhook=webhook),
    )
    if (
        not moved
        and Generation.objects.filter(
            pk=generation_id, provider_request_id=submitted.request_id
        ).exists()
    ):
        # Its webhook came first (a job that finished before our answer was recorded) and
        # named the row by its attempt: that is this request, nothing to undo.
        return True
    if not moved:
        # Canceled (or given to another submit) meanwhile: the provider has our job now, so
        # cancel it there. Record its id only on an ended row, never over a live request's.
        Generation.objects.filter(
            pk=generation_id, state__in=TERMINAL, provider_request_id__isnull=True
        ).update(provider_request_id=submitted.request_id)
        generation.provider_request_id = submitted.request_id
        generation_cancel_at_provider(generation)
    log.info("generation %s submitted as %s", generation_id, submitted.request_id)
    return moved


# A paused row is looked at again no sooner than this (the probe time may be now).
PAUSED_RECHECK = timedelta(seconds=5)

UNCONFIRMED_WAIT_MESSAGE = (
    "fal's answer to the submit was lost; waiting for fal to report the job before anything "
    "is sent again."
)
UNCONFIRMED_FAIL_MESSAGE = (
    "fal's answer to the submit was lost and, without a webhook, nothing can tell whether fal "
    "queued the job, so it was not sent again (that could have started a second paid job). "
    "Nothing was charged: your credits are back."
)


def _unconfirmable_fail(generation: Generation, *, actor: Actor) -> None:
    """A submit that may have reached fal, on a row without a webhook: nothing could ever
    confirm it, and sending it again could start a second paid job, so it fails unbilled."""
    generation_fail(
        generation_id=generation.pk,
        code=SUBMIT_UNCONFIRMED,
        message=UNCONFIRMED_FAIL_MESSAGE,
        actor=actor,
        sources=[State.SUBMITTING],
    )


def _submit_unconfirmed(generation: Generation, exc: ProviderError, *, actor: Actor, now) -> None:
    """The POST may have reached fal: never send it again blindly (a second paid job).

    With a webhook the row stays submitting: the webhook that carries this attempt's token
    confirms it (`generation_submit_confirmed`), and only after FAL_SUBMIT_RECONCILE_SECONDS
    without one, when fal has ended any request it got (its start timeout, then the longest
    run), does the reaper send it again (`generation_submit_reconcile`). fal offers no lookup
    of a request by anything we know before its answer (shared/fal-protocol.md; the platform
    API lists requests by endpoint and time only, without our inputs under X-Fal-Store-IO: 0).
    Without a webhook nothing could confirm it: the job fails, its credits are released.
    """
    if webhook_url_for(generation) is None:
        _unconfirmable_fail(generation, actor=actor)
        return
    log.warning("generation %s: %s", generation.pk, exc.message)
    Generation.objects.filter(
        pk=generation.pk, state=State.SUBMITTING, submit_token=generation.submit_token
    ).update(
        error_code=SUBMIT_UNCONFIRMED,
        error_message=UNCONFIRMED_WAIT_MESSAGE,
        updated_at=now,
    )


def generation_submit_confirmed(
    *, token: str, request_id: str, gateway_request_id: str = "", actor: Actor
) -> object | None:
    """fal's webhook names a submit attempt whose answer we never got: record the request it
    became. The row's id if this attempt is (or was already) the row's current request."""
    row = (
        Generation.objects.filter(submit_token=token)
        .values("pk", "state", "provider_request_id")
        .first()
    )
    if row is None:
        return None
    if row["provider_request_id"] == request_id:
        return row["pk"]
    moved = generation_move(
        generation_id=row["pk"],
        to=State.IN_QUEUE,
        actor=actor,
        sources=[State.SUBMITTING],
        where={"submit_token": token, "provider_request_id__isnull": True},
        provider_request_id=request_id,
        gateway_request_id=gateway_request_id,
        error_code="",
        error_message="",
        next_check_at=timezone.now() + poll_delay(0, webhook=True),
    )
    if moved:
        log.info("generation %s: lost submit confirmed as %s", row["pk"], request_id)
        return row["pk"]
    return None


def generation_submit_reconcile(*, generation: Generation, now, actor: Actor) -> bool:
    """A row still submitting past its stage deadline: its worker died, or fal's answer was
    lost. Either way the POST may have reached fal. True if it was sent back to the queue.

    Sent again only once any request fal got for it has surely ended (the reconcile
    deadline); without a webhook nothing can tell, so it fails (credits released)."""
    if webhook_url_for(generation) is None:
        _unconfirmable_fail(generation, actor=actor)
        return False
    deadline = generation.submitting_at + timedelta(seconds=settings.FAL_SUBMIT_RECONCILE_SECONDS)
    if now < deadline:
        return False
    return generation_retry_or_fail(
        generation_id=generation.pk,
        code=SUBMIT_UNCONFIRMED,
        message="fal never reported the job after its submit answer was lost; sent again.",
        actor=actor,
        where={"submit_token": generation.submit_token},
    )


def _wait_for_provider(generation_id, *, actor: Actor, now) -> None:
    """The provider refused every job (a locked account): back to queued, this attempt not
    counted, until the circuit's next probe. Its credits stay held; nothing is charged."""
    generation_move(
        generation_id=generation_id,
        to=State.QUEUED,
        actor=actor,
        audit=None,
        sources=[State.SUBMITTING],
        attempts=F("attempts") - 1,
        next_check_at=now + timedelta(seconds=settings.PROVIDER_PROBE_SECONDS),
    )


def _failed(
    generation_id, exc: ProviderError, *, actor: Actor, request_id: str | None = None
) -> None:
    if exc.retryable:
        generation_retry_or_fail(
            generation_id=generation_id,
            code=exc.code,
            message=exc.message,
            actor=actor,
            request_id=request_id,
        )
    else:
        generation_fail(
            generation_id=generation_id,
            code=exc.code,
            message=exc.message,
            actor=actor,
            request_id=request_id,
        )


# A row waits on the provider request it records only in these states.
AT_PROVIDER = (State.IN_QUEUE, State.IN_PROGRESS)


def _about_request(request_id: str | None, sources=None) -> dict:
    """generation_move's `sources` and `where` for news about provider request `request_id`
    (a poll's answer, fal's webhook): it moves the row only while the row waits on that very
    request. A retried row, queued or being submitted again, still records its earlier
    request; late news about that one (a slow poll, a delayed or repeated webhook) must not
    move the new attempt, which would abandon a job fal runs and bills and spend an attempt.
    None: news about no request (a submit's own failure), moved as `sources` say."""
    if request_id is None:
        return {"sources": sources}
    return {
        "sources": [state for state in (sources or AT_PROVIDER) if state in AT_PROVIDER],
        "where": {"provider_request_id": request_id},
    }


def generation_retry_or_fail(
    *,
    generation_id,
    code: str,
    message: str,
    actor: Actor,
    request_id: str | None = None,
    where: dict | None = None,
) -> bool:
    """After an infrastructure failure: queue the job again with back-off, or give up.

    `attempts` counts submissions, so however the failure was reported (a submit error, a
    failed status, a webhook) the job is sent at most GENERATION_MAX_ATTEMPTS times.
    request_id: the provider request the failure is about (_about_request).
    """
    attempts = Generation.objects.values_list("attempts", flat=True).get(pk=generation_id)
    if attempts >= settings.GENERATION_MAX_ATTEMPTS:
        return generation_fail(
            generation_id=generation_id,
            code=code,
            message=f"{message} (gave up after {attempts} attempts)",
            actor=actor,
            request_id=request_id,
        )
    about = _about_request(request_id, [State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS])
    if where:
        about["where"] = {**about.get("where", {}), **where}
    requeued = generation_move(
        generation_id=generation_id,
        to=State.QUEUED,
        actor=actor,
        reason=f"{code}: {message}"[:2000],
        **about,
        next_check_at=timezone.now() + retry_delay(attempts),
        queue_position=None,
        error_code=code,
        error_message=message[:2000],
    )
    if requeued:
        log.warning("generation %s: %s, retry %s queued", generation_id, code, attempts + 1)
    return requeued


def generation_fail(
    *,
    generation_id,
    code: str,
    message: str,
    actor: Actor,
    sources: list[str] | None = None,
    request_id: str | None = None,
) -> bool:
    """request_id: the provider request the failure is about (_about_request)."""
    if code == "content_policy":
        # The provider refused under its content policy (fal's content_policy_violation):
        # held for a moderator like a flagged prompt, its credits still held.
        return output_hold(
            generation_id=generation_id,
            decision=provider_refusal(message),
            actor=actor,
            **_about_request(request_id, sources),
            error_code=code,
            error_message=message[:2000],
        )
    failed = generation_move(
        generation_id=generation_id,
        to=State.FAILED,
        actor=actor,
        reason=f"{code}: {message}"[:2000],
        **_about_request(request_id, sources),
        error_code=code,
        error_message=message[:2000],
    )
    if failed:
        log.warning("generation %s failed: %s %s", generation_id, code, message)
    return failed


def generation_poll(
    *, generation_id, generation: Generation | None = None, actor: Actor = TRACKER
) -> None:
    """Ask the provider once how a request stands, and record it.

    The tracker passes the row it claimed, saving a read; every write below is conditional
    on the state, so a webhook that moved the row meanwhile wins.
    """
    if generation is None:
        generation = Generation.objects.get(pk=generation_id)
    if generation.state not in AT_PROVIDER:
        return
    backend = get_backend(generation.backend)
    now = timezone.now()
    # Every write below is about this request: if the row was sent again meanwhile (a webhook
    # queued a retry while this poll waited on fal), the answer moves nothing.
    request_id = generation.provider_request_id
    try:
        progress = backend.status(generation)
    except ProviderError as exc:
        if not exc.retryable:
            generation_fail(
                generation_id=generation_id,
                code=exc.code,
                message=exc.message,
                actor=actor,
                request_id=request_id,
            )
            return
        _poll_again_later(generation, now)
        return
    next_check = next_poll_at(
        generation,
        stage=progress.stage,
        now=now,
        # Seen running before: it started then. Seen queued last time: it started just now.
        started_at=generation.in_progress_at if generation.state == State.IN_PROGRESS else now,
        webhook=webhook_url_for(generation) is not None,
    )
    if progress.stage == "in_queue":
        Generation.objects.filter(
            pk=generation_id, state=State.IN_QUEUE, provider_request_id=request_id
        ).update(
            queue_position=progress.queue_position,
            polls=generation.polls + 1,
            next_check_at=next_check,
        )
    elif progress.stage == "in_progress":
        polled = {"polls": generation.polls + 1, "next_check_at": next_check}
        started = generation.state == State.IN_QUEUE and generation_move(
            generation_id=generation_id,
            to=State.IN_PROGRESS,
            actor=actor,
            where={"provider_request_id": request_id},
            queue_position=None,
            **polled,
        )
        if not started:
            # Running already (or a webhook moved it meanwhile: the state guard then loses).
            Generation.objects.filter(
                pk=generation_id, state=State.IN_PROGRESS, provider_request_id=request_id
            ).update(**polled)
    else:
        output_url = ""
        if progress.gateway_request_id:
            # fal retried it on its side: the result may be kept under the retried run's id.
            generation.gateway_request_id = progress.gateway_request_id
        if not progress.error or not _is_retry_or_cancel(progress.error_type):
            # A failure's status only says "Invalid status code: 422"; the result holds fal's
            # detail (which field, which policy), and that is what the user should read. A
            # success's result holds the video link, saved with the move to finalizing: a
            # finalize that dies mid-copy is retried from it, not from fal's expiring result.
            try:
                output_url = backend.result(generation).video_url
            except ProviderError as exc:
                if exc.retryable and not progress.error:
                    _poll_again_later(generation, now)
                else:
                    _failed(generation_id, exc, actor=actor, request_id=request_id)
                return
        generation_complete_at_provider(
            generation_id=generation_id,
            metrics=progress.metrics,
            error=progress.error,
            error_type=progress.error_type,
            output_url=output_url,
            gateway_request_id=progress.gateway_request_id,
            actor=actor,
            request_id=request_id,
        )


def _poll_again_later(generation: Generation, now) -> None:
    """The provider did not answer usefully: ask again after a back-off, state unchanged."""
    Generation.objects.filter(
        pk=generation.pk,
        state=generation.state,
        provider_request_id=generation.provider_request_id,
    ).update(polls=generation.polls + 1, next_check_at=now + retry_delay(generation.polls + 1))


def _is_retry_or_cancel(error_type: str | None) -> bool:
    return error_type == "canceled" or is_infrastructure_error(error_type)


def generation_complete_at_provider(
    *,
    generation_id,
    metrics: dict,
    error: str | None = None,
    error_type: str | None = None,
    output_url: str = "",
    gateway_request_id: str = "",
    actor: Actor,
    request_id: str | None = None,
    running_since: datetime | None = None,
) -> None:
    """The provider says the request is finished (from a poll or a webhook). request_id: the
    request it speaks of; the row moves only while it waits on that one (_about_request).
    running_since: when we first saw it running, for a run time when the metrics have none."""
    about = _about_request(request_id)
    if error:
        if error_type == "canceled":
            asked = Generation.objects.filter(
                pk=generation_id, cancel_requested_at__isnull=False
            ).exists()
            generation_move(
                generation_id=generation_id,
                to=State.CANCELED,
                actor=actor,
                reason="Canceled by its owner" if asked else "Canceled at the provider",
                **about,
            )
        elif is_infrastructure_error(error_type):
            generation_retry_or_fail(
                generation_id=generation_id,
                code=error_type,
                message=error,
                actor=actor,
                request_id=request_id,
            )
        else:
            generation_fail(
                generation_id=generation_id,
                code=error_type or "provider_error",
                message=error,
                actor=actor,
                request_id=request_id,
            )
        return
    inference = metrics.get("inference_time") if isinstance(metrics, dict) else None
    now = timezone.now()
    if not isinstance(inference, int | float) and running_since is not None:
        # A webhook's finish: without a run time, the tracker could never learn how long such
        # jobs take, and would poll every job it expects a webhook for while it runs.
        inference = max((now - running_since).total_seconds(), 0.0)
    lease = now + FINALIZE_QUEUED
    # A fal-side retry's id, kept for a finalize that must fetch the result (no webhook link).
    retried = {"gateway_request_id": gateway_request_id} if gateway_request_id else {}
    moved = generation_move(
        generation_id=generation_id,
        to=State.FINALIZING,
        actor=actor,
        **about,
        provider_metrics=metrics or {},
        inference_seconds=inference if isinstance(inference, int | float) else None,
        queue_position=None,
        provider_output_url=output_url,
        next_check_at=lease,
        **retried,
    )
    if moved:
        enqueue_finalize(generation_id, lease)


INFRASTRUCTURE_ERROR_TYPES = {"request_timeout", "startup_timeout", "internal_error"}


def is_infrastructure_error(error_type: str | None) -> bool:
    return bool(error_type) and (
        error_type in INFRASTRUCTURE_ERROR_TYPES or error_type.startswith("runner_")
    )


def enqueue_finalize(generation_id, lease) -> None:
    """Queue a finalize that may run only while the row still holds this `lease` value."""
    transaction.on_commit(
        lambda: enqueue(
            "workflows.tasks.finalize",
            str(generation_id),
            lease.isoformat(),
            task_name=f"finalize {generation_id}",
            # The row records the outcome; django-q's result table would cost queries per job.
            save=False,
        )
    )


def generation_finalize_requeue(*, generation: Generation) -> bool:
    """The tracker found a finalizing row whose lease ran out (its task was lost, or its
    worker died): queue the finalize again, holding the row as a queued finalize does.
    `generation.next_check_at` is the tracker's claim mark on the row."""
    lease = timezone.now() + FINALIZE_QUEUED
    if not Generation.objects.filter(
        pk=generation.pk, state=State.FINALIZING, next_check_at=generation.next_check_at
    ).update(next_check_at=lease):
        return False
    enqueue_finalize(generation.pk, lease)
    return True


def generation_finalize(*, generation_id, lease=None, actor: Actor = WORKER) -> bool:
    """Copy the finished video into our storage, probe it, make a poster, mark it succeeded.

    `lease` is the next_check_at value the row had when this finalize was queued: a copy of
    the task queued earlier (before the tracker re-queued it) finds a newer value and stops,
    so two finalizes never work on one row at once. None: take the lease only if it expired.
    """
    now = timezone.now()
    rows = Generation.objects.filter(pk=generation_id, state=State.FINALIZING)
    rows = (
        rows.filter(next_check_at=lease)
        if lease is not None
        else rows.filter(next_check_at__lte=now)
    )
    held_until = now + FINALIZE_LEASE
    if not rows.update(next_check_at=held_until, updated_at=now):
        return False
    generation = Generation.objects.get(pk=generation_id)
    backend = get_backend(generation.backend)
    completed = None
    held = {"until": held_until}

    def renew() -> bool:
        until = timezone.now() + FINALIZE_LEASE
        renewed = Generation.objects.filter(
            pk=generation_id, state=State.FINALIZING, next_check_at=held["until"]
        ).update(next_check_at=until)
        if renewed:
            held["until"] = until
        return bool(renewed)

    with heartbeat(renew, every=FINALIZE_BEAT_SECONDS, longest=FINALIZE_LONGEST.total_seconds()):
        try:
            if generation.provider_output_url:
                # The webhook carried the output: no need to ask fal for it again.
                completed = Completed(video_url=generation.provider_output_url)
            else:
                completed = backend.result(generation)
            with backend.open_video(completed) as chunks:
                stored = media.store_video(
                    generation, chunks, declared_type=completed.content_type, frames=wants_frames()
                )
        except ProviderError as exc:
            if exc.retryable:
                # The next try downloads from the link it already has (fal's results expire).
                known = {"provider_output_url": completed.video_url} if completed else {}
                Generation.objects.filter(pk=generation_id, state=State.FINALIZING).update(
                    next_check_at=now + retry_delay(generation.attempts + 1), **known
                )
                return False
            generation_fail(
                generation_id=generation_id, code=exc.code, message=exc.message, actor=actor
            )
            return False
        except media.BadVideo as exc:
            generation_fail(
                generation_id=generation_id, code="malformed_result", message=str(exc), actor=actor
            )
            return False
        # Still under the lease: the check may wait on OpenAI (moderation.output_check).
        decision = output_check(frames=stored.frames)
    kept = dict(
        output=stored.video_name,
        poster=stored.poster_name,
        video_codec=stored.info.codec,
        video_width=stored.info.width,
        video_height=stored.info.height,
        video_duration=stored.info.duration_s,
        video_bytes=stored.info.size_bytes,
        c2pa_manifest=stored.manifest_label,
        error_code="",
        error_message="",
        # The provider's link was only a fallback until our copy existed; it expires anyway.
        provider_output_url="",
    )
    if not decision.allowed:
        # Kept but not shown: held (credits still held) until a moderator approves or rejects.
        output_hold(
            generation_id=generation_id,
            decision=decision,
            actor=actor,
            where={"next_check_at": held["until"]},
            **kept,
        )
        return False
    # Still ours only if no other finalize took the lease over (ours outlived it).
    succeeded = generation_move(
        generation_id=generation_id,
        to=State.SUCCEEDED,
        actor=actor,
        where={"next_check_at": held["until"]},
        **kept,
    )
    # Not succeeded: the finalize that took over writes (and keeps) the same names, or the
    # row was ended meanwhile and the retention job sweeps the files no row refers to.
    return succeeded


def generation_cancel_at_provider(generation: Generation) -> None:
    """Best effort: stop paying for a job we no longer want."""
    if not generation.provider_request_id:
        return
    try:
        get_backend(generation.backend).cancel(generation)
    except ProviderError as exc:
        log.warning("could not cancel %s at the provider: %s", generation.pk, exc)


def enqueue_submit(generation_id) -> None:
    """Called once a queued row is committed, due now (next_check_at): the tracker submits it.

    The tracker's threads make many quick provider calls at once, where a django-q worker
    makes one at a time and waits behind video copies in the same queue. In django-q's sync
    mode (tests, no processes running) nothing would pick the row up, so submit it here.
    """
    if Conf.SYNC:
        generation_submit(generation_id=generation_id, actor=WORKER)
