"""The provider circuit: a locked fal account or an outage pauses submissions; jobs wait
queued with their credits held, staff hear of it once, a probe resumes everything."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from generation.models import Generation, State
from tests.factories import UserFactory
from tests.support.forms import FORM
from workflows import tracking
from workflows.circuit import circuit_forget
from workflows.models import ProviderCircuit
from workflows.tracking import track_once

from .conftest import ledger_kinds, make_generation, run_submit, track_until_terminal

pytestmark = pytest.mark.django_db

LOCKED = "User is locked. Reason: Exhausted balance. Top up your balance to continue."


@pytest.fixture
def staff(db):
    return UserFactory(email="ops@example.com", is_staff=True, is_superuser=True)


def lock_the_account(fake_fal, n=1):
    fake_fal.fail_next_submits(n, status=403, error_type=None, detail=LOCKED)


def circuit():
    return ProviderCircuit.objects.get(backend="fal")


def test_a_locked_account_pauses_submissions_and_charges_nothing(
    fake_fal, staff, alice_client, django_capture_on_commit_callbacks
):
    lock_the_account(fake_fal)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("generate"), FORM)
    assert response.status_code == 302
    generation = Generation.objects.get()
    # Back in the queue, this attempt not counted; its credits held, nothing captured.
    assert generation.state == State.QUEUED and generation.attempts == 0
    assert ledger_kinds(generation) == ["hold"]
    assert circuit().state == ProviderCircuit.State.OPEN
    assert "locked" in circuit().reason
    (alert,) = mail.outbox
    assert alert.to == ["ops@example.com"] and "paused" in alert.subject

    # While paused, nothing more is sent: the next job waits without a call to fal.
    calls = len(fake_fal.submits())
    later = make_generation(generation.user, state=State.QUEUED)
    assert run_submit(later, django_capture_on_commit_callbacks).state == State.QUEUED
    assert len(fake_fal.submits()) == calls

    # The owner is told why it waits.
    status = alice_client.get(reverse("generation_status", args=[generation.pk])).json()
    assert status["state"] == "queued" and "nothing is" in status["notice"]
    page = alice_client.get(generation.get_absolute_url()).content.decode()
    assert "credits are held" in page
    assert len(mail.outbox) == 1  # one alert per opening, not per job


def test_a_probe_that_goes_through_resumes_everything(
    fake_fal, staff, user, django_capture_on_commit_callbacks
):
    lock_the_account(fake_fal)
    first = make_generation(user, state=State.QUEUED)
    second = make_generation(user, state=State.QUEUED)
    assert run_submit(first, django_capture_on_commit_callbacks).state == State.QUEUED
    assert circuit().state == ProviderCircuit.State.OPEN
    # The probe time comes (the account was topped up meanwhile: the fake accepts again).
    ProviderCircuit.objects.update(probe_at=timezone.now() - timedelta(seconds=1))
    Generation.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    circuit_forget()
    track_until_terminal(django_capture_on_commit_callbacks)
    assert circuit().state == ProviderCircuit.State.CLOSED
    for generation in (first, second):
        generation.refresh_from_db()
        assert generation.state == State.SUCCEEDED
    staff_alerts = [m.subject for m in mail.outbox if m.to != [user.email]]
    assert staff_alerts == [
        "[Promptreel] Submissions to fal are paused",
        "[Promptreel] Submissions to fal have resumed",
    ]
    # The owner hears of each clip once, when it is ready: in one email when both ended
    # before the sender ran, else one each (workflows.notifications; timing decides).
    owner = [m.subject for m in mail.outbox if m.to == [user.email]]
    assert owner in (
        ["Promptreel: 2 videos are ready"],
        ["Promptreel: your video is ready"] * 2,
    )


def test_a_probe_that_fails_keeps_waiting(fake_fal, user, django_capture_on_commit_callbacks):
    lock_the_account(fake_fal, n=2)
    generation = make_generation(user, state=State.QUEUED)
    run_submit(generation, django_capture_on_commit_callbacks)
    ProviderCircuit.objects.update(probe_at=timezone.now() - timedelta(seconds=1))
    circuit_forget()
    assert run_submit(generation, django_capture_on_commit_callbacks).state == State.QUEUED
    assert len(fake_fal.submits()) == 2  # the probe went, and was refused
    assert circuit().state == ProviderCircuit.State.OPEN
    assert circuit().probe_at > timezone.now()
    generation.refresh_from_db()
    assert generation.attempts == 0


def test_repeated_provider_failures_open_the_circuit(
    fake_fal, staff, user, settings, django_capture_on_commit_callbacks
):
    settings.PROVIDER_CIRCUIT_FAILURES = 3
    fake_fal.fail_next_submits(3, status=503)
    jobs = [make_generation(user, state=State.QUEUED) for _ in range(3)]
    for index, job in enumerate(jobs, start=1):
        job = run_submit(job, django_capture_on_commit_callbacks)
        # Each is retried later as before (an outage is not the job's fault).
        assert job.state == State.QUEUED and job.attempts == 1
        opened = circuit().state == ProviderCircuit.State.OPEN
        assert opened == (index == 3)
    assert len(mail.outbox) == 1


def test_failures_spread_out_do_not_open_it(
    fake_fal, user, settings, django_capture_on_commit_callbacks
):
    settings.PROVIDER_CIRCUIT_FAILURES = 2
    fake_fal.fail_next_submits(2, status=503)
    first, second = (make_generation(user, state=State.QUEUED) for _ in range(2))
    run_submit(first, django_capture_on_commit_callbacks)
    ProviderCircuit.objects.update(window_started_at=timezone.now() - timedelta(minutes=5))
    run_submit(second, django_capture_on_commit_callbacks)
    assert circuit().state == ProviderCircuit.State.CLOSED
    assert circuit().window_failures == 1


def test_a_job_queued_too_long_is_failed_and_refunded(
    fake_fal, settings, alice_client, django_capture_on_commit_callbacks
):
    settings.PROVIDER_QUEUE_TIMEOUT_SECONDS = 600
    lock_the_account(fake_fal)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(reverse("generate"), FORM)
    generation = Generation.objects.get()
    Generation.objects.update(queued_at=timezone.now() - timedelta(minutes=11))
    with django_capture_on_commit_callbacks(execute=True):
        tracking.reap()
    generation.refresh_from_db()
    assert generation.state == State.FAILED and generation.error_code == "stage_timeout"
    assert "Nothing was charged" in generation.error_message
    assert ledger_kinds(generation) == ["hold", "release"]


def test_a_poll_that_meets_a_locked_account_tries_again_later(
    fake_fal, user, django_capture_on_commit_callbacks
):
    generation = run_submit(
        make_generation(user, state=State.QUEUED), django_capture_on_commit_callbacks
    )
    assert generation.state == State.IN_QUEUE
    fake_fal.fail_next_status(1, status=403, error_type=None, detail=LOCKED)
    Generation.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        track_once()
    generation.refresh_from_db()
    assert generation.state in (State.IN_QUEUE, State.IN_PROGRESS)
    assert generation.next_check_at > timezone.now()
