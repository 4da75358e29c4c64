"""Work leases kept alive by a heartbeat, so that lost work is noticed in seconds, not hours.

On the Redis broker django-q2 hands a task to a worker and forgets it: a worker killed with
SIGKILL (or the OOM killer) loses the task it was running, and nothing will ever say so. So
long work holds a lease that a thread of the working process renews every `every` seconds;
the lease lasts a few beats, so a dead worker's lease runs out soon after the work stopped,
and whoever watches the work (the tracker) redoes it. A live worker renews for at most
`longest` seconds: work still running by then is stuck, and is let go to be redone too.
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connections

log = logging.getLogger(__name__)


@contextmanager
def heartbeat(renew: Callable[[], bool], *, every: float, longest: float) -> Iterator[None]:
    """Call `renew()` every `every` seconds while the block runs, until it returns False (the
    lease was lost), the block ends or `longest` seconds passed. The renewals have stopped
    when the block exits, so the caller may then act on the lease it last renewed."""
    stop = threading.Event()

    def beat():
        try:
            _beat()
        finally:
            connections.close_all()  # this thread's own connections only

    def _beat():
        waited = 0.0
        while not stop.wait(every):
            waited += every
            if waited > longest:
                log.warning("lease not renewed after %.0f s: the work is taken as stuck", longest)
                return
            try:
                if not renew():
                    return
            except Exception:
                log.exception("lease renewal failed")  # the next beat tries again

    thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
