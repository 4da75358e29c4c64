from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.services import user_ensure_demo, user_ensure_demo_staff


class Command(BaseCommand):
    help = (
        "Create the demo account (DEMO_EMAIL / DEMO_PASSWORD) and print how to sign in; with "
        "--staff also a staff account for the admin (DEBUG only)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--staff",
            action="store_true",
            help="also DEMO_STAFF_EMAIL, a superuser and moderator with the same password "
            "(only with DEBUG on: never a known password on a production site)",
        )

    def handle(self, *args, **options):
        user, created = user_ensure_demo(email=settings.DEMO_EMAIL, password=settings.DEMO_PASSWORD)
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} demo account — email: {user.email}  password: {settings.DEMO_PASSWORD}"
        )
        if not options["staff"]:
            return
        if not settings.DEBUG:
            self.stdout.write("No demo staff account: DEBUG is off.")
            return
        staff, created = user_ensure_demo_staff(
            email=settings.DEMO_STAFF_EMAIL, password=settings.DEMO_PASSWORD
        )
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} demo staff account (admin at /admin/, moderator queues, staff dashboard) — "
            f"email: {staff.email}  password: {settings.DEMO_PASSWORD}"
        )
