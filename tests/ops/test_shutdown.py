"""SIGTERM: qcluster and track stop within seconds and leave nothing claimed."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.tasks import async_task

from core import queueing, shutdown
from generation import tasks as generation_tasks
from generation.backends.local import LocalBackend
from generation.models import State
from tests.factories import GenerationFactory
from tests.media.helpers import tiny_mp4
from tests.support.processes import ROOT, process_env, unique_queue_name
from workflows import tasks, tracking

STOP_WITHIN = 10.0  # seconds, issue 15


@pytest.fixture
def own_queue(monkeypatch):
    """Tasks go to a broker queue of this test's own, not run inline."""
    queue = unique_queue_name()
    monkeypatch.setattr(Conf, "SYNC", False)
    # The queue's name also salts django-q's task signatures: both ends must agree on it.
    monkeypatch.setattr(Conf, "CLUSTER_NAME", queue)
    monkeypatch.setattr(Conf, "PREFIX", queue)
    queueing._broker.cache_clear()  # this process's broker must use the queue's name
    broker = get_broker(queue)
    yield queue, broker
    broker.purge_queue()
    queueing._broker.cache_clear()


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def seconds_to_exit_after_sigterm(proc: subprocess.Popen) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # the main process only, as systemd's KillMode=mixed
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return time.monotonic() - started


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_qcluster_stops_within_ten_seconds_and_hands_renders_back(user, own_queue, tmp_path):
    queue, broker = own_queue
    call_command("grant_credits", user.email, "5000", "--plan", "studio", "--reason", "test")
    for index in range(4):
        call_command(
            "generate", f"a slow render {index}", "--user", user.email, "--resolution", "1080p"
        )
    assert tracking.track_once() == 4  # submitted: four render tasks wait in the broker
    render_dir = Path(LocalBackend.job_dir("x")).parent
    log = tmp_path / "qcluster.log"
    # One worker, a short grace: the render running at SIGTERM must be interrupted.
    env = process_env(Q_QUEUE_NAME=queue, Q_WORKERS=1, Q_STOP_GRACE_SECONDS=1)
    proc = start(["qcluster"], env, log)
    try:
        wait_for(lambda: any(render_dir.glob("*/rendering")), 60, "a render starting", log)
    except BaseException:
        seconds_to_exit_after_sigterm(proc)
        raise
    took = seconds_to_exit_after_sigterm(proc)

    assert proc.returncode == 0, log.read_text()[-3000:]
    assert took < STOP_WITHIN, f"{took:.1f} s:\n{log.read_text()[-3000:]}"
    jobs = [path for path in render_dir.iterdir() if path.is_dir()]
    done = [job for job in jobs if (job / "output.mp4").exists()]
    # Nothing left claimed: a job is rendered, or free for the next worker (no marker, no
    # half-written file) with its task back in the broker.
    for job in jobs:
        if job not in done:
            assert not (job / "rendering").exists(), job
            assert not (job / "output.part.mp4").exists(), job
    assert broker.queue_size() == len(jobs) - len(done) > 0, log.read_text()[-3000:]
    assert "handed" in log.read_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_track_stops_within_ten_seconds(user, tmp_path):
    log = tmp_path / "track.log"
    proc = start(["track"], process_env(), log)
    wait_for(lambda: b"Tracker running" in log.read_bytes(), 60, "the tracker starting", log)
    took = seconds_to_exit_after_sigterm(proc)
    assert proc.returncode == 0 and took < STOP_WITHIN, (took, log.read_text()[-3000:])
    assert "Tracker stopped." in log.read_text()


@pytest.mark.django_db
def test_a_stopping_tracker_hands_claimed_rows_back_unstepped(user):
    due = timezone.now() - timedelta(seconds=1)
    rows = [GenerationFactory(user=user, state=State.QUEUED, next_check_at=due) for _ in range(3)]
    stop = shutdown.multiprocessing.get_context("fork").Event()
    stop.set()  # SIGTERM arrived while the pass was claiming
    before = timezone.now()

    assert tracking.track_once(stop=stop) == 3

    for row in rows:
        row.refresh_from_db()
        assert row.state == State.QUEUED  # not submitted
        assert before <= row.next_check_at <= timezone.now()  # due at once, not leased


@pytest.fixture
def stopping_worker(monkeypatch, own_queue):
    """This process as a qcluster worker whose cluster got SIGTERM (no grace)."""
    previous = signal.getsignal(signal.SIGUSR1)
    monkeypatch.setattr(shutdown, "STOP", None)
    shutdown.prepare()
    monkeypatch.setattr("django.conf.settings.Q_STOP_GRACE_SECONDS", 0)
    shutdown._on_worker_spawn()
    yield own_queue[1]
    shutdown.request_stop()  # ends the watcher thread
    signal.signal(signal.SIGUSR1, previous)


@pytest.mark.django_db(transaction=True)
def test_an_interrupted_finalize_gives_its_lease_back_at_once(stopping_worker, user, tmp_path):
    broker = stopping_worker
    video = tmp_path / "out.mp4"
    video.write_bytes(tiny_mp4(frames=24))
    lease = timezone.now() + timedelta(seconds=30)
    generation = GenerationFactory(
        user=user,
        state=State.FINALIZING,
        next_check_at=lease,
        provider_output_url=video.as_uri(),
    )

    @contextlib.contextmanager
    def slow_download(self, completed):  # the provider's download, at the network edge
        def chunks():
            shutdown.request_stop()  # SIGTERM to the cluster mid-copy
            while True:
                yield b"\0" * 1024
                time.sleep(0.01)

        yield chunks()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalBackend, "open_video", slow_download)
        started = time.monotonic()
        assert tasks.finalize(str(generation.pk), lease.isoformat()) == "handed back"
        took = time.monotonic() - started

    generation.refresh_from_db()
    assert took < 5
    assert generation.state == State.FINALIZING
    # Not held for FINALIZE_LEASE (15 min): due now, and queued again to take it afresh.
    assert generation.next_check_at <= timezone.now()
    assert broker.queue_size() == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_not_started_when_the_cluster_stops_goes_back_to_the_broker(stopping_worker, user):
    broker = stopping_worker
    shutdown.request_stop()
    assert generation_tasks.local_render("no-such-job") == "handed back before it started"
    assert broker.queue_size() == 1


def _worker_pids(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"ready for work at (\d+)", log.read_text())]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", ["SIGTERM to the whole group", "a worker died first"])
def test_qcluster_stops_when_the_signal_or_a_death_reached_its_children(case, own_queue, tmp_path):
    """Two ways qcluster used to hang for ever on a multiprocessing.Event, whose set() waits
    for every process asleep in wait(): SIGTERM to the whole process group (`kill 0` in
    ./dev.sh, systemd's KillMode=control-group) killed the sentinel asleep on django-q2's stop
    event; a worker killed for its timeout left its stop-watcher asleep on ours."""
    queue, _broker = own_queue
    log = tmp_path / "qcluster.log"
    env = process_env(Q_QUEUE_NAME=queue, Q_WORKERS=2, Q_TIMEOUT=2)
    proc = start(["qcluster"], env, log)
    try:
        wait_for(lambda: len(_worker_pids(log)) >= 2, 60, "two workers ready", log)
        if case == "a worker died first":
            async_task("time.sleep", 60)  # outlives Q_TIMEOUT: django-q2 kills its worker
            wait_for(lambda: "reincarnated worker" in log.read_text(), 60, "a timeout kill", log)
            wait_for(lambda: len(_worker_pids(log)) >= 3, 30, "a replacement worker", log)
        time.sleep(0.5)  # every worker's stop-watcher is running
        started = time.monotonic()
        if case == "SIGTERM to the whole group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_WITHIN + 10)
        took = time.monotonic() - started
        stopped = proc.poll() is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert stopped and took < STOP_WITHIN, f"{took:.1f} s:\n{log.read_text()[-3000:]}"
