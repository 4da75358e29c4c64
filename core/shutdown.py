"""Graceful stop of the django-q2 workers: SIGTERM → exit within seconds, nothing left claimed.

django-q2 on its own stops by letting each worker finish its task and then every task already
prefetched into the cluster's queue, so a `qcluster` busy with renders took over 80 s to go, and
one killed at the end of systemd's timeout left leases held (a finalize's for 15 minutes).

`manage.py qcluster` (core/management/commands/qcluster.py) makes STOP before it forks, sets it
on SIGTERM/SIGINT, then lets django-q2 stop as usual. STOP is a byte of shared memory that each
worker's watcher polls, not a multiprocessing.Event: Event.set() waits for every thread asleep
in wait() to acknowledge, so one worker that had died (killed for its timeout, say) made the
next stop hang for ever. (django-q2's own stop event has the same flaw with its sentinel:
core/management/commands/qcluster.py.)

In each worker, a task wrapped in @hands_back_on_stop then:
- that has not started when STOP is set is queued again at once, for another cluster;
- that is running gets STOP_GRACE_SECONDS to finish; after that WorkerStopping is raised inside
  it (by SIGUSR1 to the worker's main thread), its `release` undoes its claim, and it is queued
  again. Tasks are idempotent (leases, markers), so a redo is safe.
"""

import functools
import logging
import multiprocessing
import signal
import threading
import time

from django.conf import settings
from django_q.signals import post_spawn

from .queueing import enqueue

log = logging.getLogger(__name__)

# Set in the qcluster's main process on SIGTERM; every forked worker shares it.
STOP = None
WATCH_EVERY_SECONDS = 0.1
_running = threading.Event()  # a wrapped task is running in this worker


class WorkerStopping(BaseException):  # noqa: N818 - not an error: a request to stop
    """Raised inside a running task when its cluster stops and the grace period is over.

    A BaseException, so that `except Exception` in task code does not swallow it.
    """


def prepare() -> None:
    """Make STOP; call in the qcluster's main process before it forks the cluster."""
    global STOP
    STOP = multiprocessing.get_context("fork").RawValue("b", 0)


def request_stop() -> None:
    if STOP is not None:
        STOP.value = 1  # one byte written: nothing to wait for, nothing to deadlock on


def stopping() -> bool:
    return STOP is not None and STOP.value == 1


def hands_back_on_stop(release=None):
    """Decorate a django-q task so that a stopping cluster hands it back instead of running
    it to the end. After an interrupted run, `release(*args, **kwargs)` undoes its claim and
    returns the arguments to queue the task again with (None: do not queue it again)."""

    def decorate(task):
        path = f"{task.__module__}.{task.__name__}"

        @functools.wraps(task)
        def wrapper(*args, **kwargs):
            if stopping():
                _requeue(path, args, kwargs)
                return "handed back before it started"
            _running.set()
            try:
                return task(*args, **kwargs)
            except WorkerStopping:
                again = release(*args, **kwargs) if release is not None else (args, kwargs)
                if again is not None:
                    _requeue(path, *again)
                log.warning("stopping: handed %s%r back", path, args)
                return "handed back"
            finally:
                _running.clear()

        return wrapper

    return decorate


def _requeue(path: str, args: tuple, kwargs: dict) -> None:
    name = f"{path.rsplit('.', 1)[-1]} {args[0] if args else ''}".strip()
    enqueue(path, *args, task_name=name, save=False, **kwargs)


def _interrupt(signum, frame):
    if _running.is_set() and stopping():
        raise WorkerStopping


def _watch(main_thread_id: int) -> None:
    while not stopping():
        time.sleep(WATCH_EVERY_SECONDS)
    # Let the running task finish if it can; then interrupt it (between two bytecodes of the
    # main thread, or when its current system call returns).
    deadline = time.monotonic() + settings.Q_STOP_GRACE_SECONDS
    while _running.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running.is_set():
        signal.pthread_kill(main_thread_id, signal.SIGUSR1)


def _on_worker_spawn(**kwargs) -> None:
    if STOP is None:
        return  # not under our qcluster (e.g. django-q's sync mode in tests)
    signal.signal(signal.SIGUSR1, _interrupt)
    threading.Thread(
        target=_watch, args=(threading.main_thread().ident,), daemon=True, name="stop-watch"
    ).start()


post_spawn.connect(_on_worker_spawn, dispatch_uid="core-shutdown-watch")
