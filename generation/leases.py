"""Work leases kept alive by a heartbeat, so that lost work is noticed in seconds, not hours.

On the Redis broker django-q2 hands a task to a worker and forgets it: a worker killed with
SIGKILL (or the OOM killer) loses the task it was running, and nothing will ever say so. So
long work holds a lease that a thread of the working process renews every `every` seconds;
the lease lasts a few beats, so a dead worker's lease runs out soon after the work stopped,
and whoever watches the work (the tracker) redoes it. A live worker renews for at most
`longest` seconds: work still running by then is stuck, and is let go to be redone too.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connections

log = logging.getLogger(__name__)


class _Lease:
    __slots__ = ("renew", "every", "due", "until", "lock", "done")

    def __init__(self, renew: Callable[[], bool], every: float, longest: float):
        now = time.monotonic()
        self.renew = renew
        self.every = every
        self.due = now + every
        self.until = now + longest
        self.lock = threading.Lock()  # held while renewing: the block's exit waits for it
        self.done = False


class _Keeper:
    """One thread per process renews every lease its work holds.

    A thread per lease cost each finalize a thread start and join and a database connection
    opened and closed by that thread; at 1000 jobs in flight that was a measurable share of
    the worker's time (benchmarks/README.md, inflight). This thread lives as long as its
    process (a forked worker starts its own) and keeps its connection between beats.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._leases: set[_Lease] = set()
        self._pid = 0

    def hold(self, lease: _Lease) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (or a fork's child)
                self._pid = os.getpid()
                self._leases = set()
                threading.Thread(target=self._run, name="lease-keeper", daemon=True).start()
            self._leases.add(lease)
            self._cond.notify()

    def release(self, lease: _Lease) -> None:
        with self._cond:
            lease.done = True
            self._leases.discard(lease)
        with lease.lock:  # a renewal under way finishes first
            pass

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [lease for lease in self._leases if lease.due <= now]
                if not due:
                    wait = min((lease.due for lease in self._leases), default=now + 60) - now
                    self._cond.wait(max(wait, 0.01))
                    continue
            close_old_connections()  # a connection that broke or outlived CONN_MAX_AGE
            for lease in due:
                self._beat(lease)
            with self._cond:
                idle = not self._leases
            if idle:
                connections.close_all()  # this thread's own; none is held while nothing runs

    def _beat(self, lease: _Lease) -> None:
        with lease.lock:
            if lease.done:
                return
            now = time.monotonic()
            keep = now <= lease.until
            if not keep:
                log.warning("lease not renewed after its longest: the work is taken as stuck")
            else:
                try:
                    keep = bool(lease.renew())
                except Exception:
                    log.exception("lease renewal failed")  # the next beat tries again
            lease.due = now + lease.every
            if not keep:
                lease.done = True
                with self._cond:
                    self._leases.discard(lease)


_keeper = _Keeper()


@contextmanager
def heartbeat(renew: Callable[[], bool], *, every: float, longest: float) -> Iterator[None]:
    """Call `renew()` every `every` seconds while the block runs, until it returns False (the
    lease was lost), the block ends or `longest` seconds passed. The renewals have stopped
    when the block exits, so the caller may then act on the lease it last renewed."""
    lease = _Lease(renew, every, longest)
    _keeper.hold(lease)
    try:
        yield
    finally:
        _keeper.release(lease)
