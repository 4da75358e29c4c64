import signal
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from generation.tracking import track_once


class Command(BaseCommand):
    help = "Track in-flight generations: poll the provider, retry submissions, resume finalizing."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=16, help="concurrent provider calls")
        parser.add_argument(
            "--idle-sleep", type=float, default=0.2, help="pause when nothing is due"
        )

    def handle(self, *args, threads: int, idle_sleep: float, **options):
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Tracker running with {threads} threads; Ctrl-C to stop.")
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="track") as pool:
            while not stopping:
                close_old_connections()
                if track_once(executor=pool) == 0:
                    time.sleep(idle_sleep)
        self.stdout.write("Tracker stopped.")
