"""Fill the staff dashboard's hourly tables now: the recent days (what the 5-minute schedule
does), the last N days, or every day there are generations (once, after a deployment that
already has history)."""

import datetime as dt

from django.core.management.base import BaseCommand
from django.db.models import Min
from django.utils import timezone

from desk import rollup
from generation.models import Generation


class Command(BaseCommand):
    help = "Recompute the staff dashboard's hourly figures (desk.rollup)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--days", type=int, help="the last N days (today included)")
        which.add_argument("--all", action="store_true", help="every day since the first row")

    def handle(self, *args, days=None, all=False, **options):
        today = timezone.now().date()
        if all:
            first = Generation.objects.aggregate(first=Min("created_at"))["first"]
            days = (today - first.date()).days + 1 if first else 1
        if days is None:
            done = rollup.rollup_recent()
        else:
            if days < 1:
                self.stderr.write("--days must be at least 1")
                return
            done = {today - dt.timedelta(days=n) for n in range(days)}
            rollup.rollup_days(days=done)
        self.stdout.write(f"recomputed {len(done)} day(s): {min(done)} to {max(done)}")
