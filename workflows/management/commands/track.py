import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from workflows.tracking import PASS_LIMIT, track_once


class Command(BaseCommand):
    help = "Track in-flight generations: poll the provider, retry submissions, resume finalizing."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=16, help="concurrent provider calls")
        parser.add_argument(
            "--interval",
            type=float,
            default=0.2,
            help="seconds between the starts of two passes, unless the last one was full",
        )

    def handle(self, *args, threads: int, interval: float, **options):
        # SIGTERM: no new pass; steps already running finish (each is one quick provider
        # call), rows claimed but not stepped yet are handed back (tracking.track_once).
        stopping = threading.Event()

        def stop(signum, frame):
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Tracker running with {threads} threads; Ctrl-C to stop.")
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="track") as pool:
            while not stopping.is_set():
                started = time.monotonic()
                close_old_connections()
                # A pass costs two queries however many rows it claims: with work arriving
                # all the time, spacing passes lets each take a batch rather than a row or two.
                if track_once(executor=pool, limit=PASS_LIMIT, stop=stopping) < PASS_LIMIT:
                    stopping.wait(max(0.0, interval - (time.monotonic() - started)))
        self.stdout.write("Tracker stopped.")
