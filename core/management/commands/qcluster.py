"""django-q2's qcluster with a graceful SIGTERM (core/shutdown.py says how).

It takes django_q's place because core comes before django_q in INSTALLED_APPS (the command
of the earlier app wins).
"""

import os

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from core import shutdown


class GracefulCluster(Cluster):
    def sig_handler(self, signum, frame):
        shutdown.request_stop()  # the workers hand their tasks back
        super().sig_handler(signum, frame)  # then django-q2's stop: pusher, workers, monitor


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
