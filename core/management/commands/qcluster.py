"""django-q2's qcluster with a graceful SIGTERM (core/shutdown.py says how).

It takes django_q's place because core comes before django_q in INSTALLED_APPS (the command
of the earlier app wins).
"""

import logging
import os
import threading

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from core import shutdown

log = logging.getLogger("django-q")


class GracefulCluster(Cluster):
    def sig_handler(self, signum, frame):
        shutdown.request_stop()  # the workers hand their tasks back
        super().sig_handler(signum, frame)  # then stop(): pusher, workers, monitor

    def stop(self) -> bool:
        """django-q2's stop, except that setting the stop event cannot hang: it is a
        multiprocessing.Event, whose set() waits until every process asleep in wait() (the
        sentinel's guard loop) acknowledges, and a sentinel killed by the same signal (a
        SIGTERM to the whole process group: `kill 0`, systemd's KillMode=control-group)
        never does. qcluster then hung for ever with the dead sentinel as a zombie."""
        if self.sentinel is None or not self.sentinel.is_alive():
            return False
        log.info("Q Cluster %s stopping.", self.name)
        threading.Thread(target=self.stop_event.set, daemon=True, name="stop-event").start()
        self.sentinel.join()
        log.info("Q Cluster %s has stopped.", self.name)
        self.start_event = None
        self.stop_event = None
        return True


class Command(qcluster.Command):
    help = "Start the django-q2 cluster; SIGTERM stops it within seconds, handing work back."

    def handle(self, *args, **options):
        # As django-q2's handle(), with our cluster.
        settings.SECRET_KEY  # noqa: B018 - signing needs it: fail here, not in a worker
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        shutdown.prepare()
        cluster = GracefulCluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
