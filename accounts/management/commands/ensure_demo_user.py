from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.services import user_ensure_demo


class Command(BaseCommand):
    help = "Create the demo account (DEMO_EMAIL / DEMO_PASSWORD) and print how to sign in."

    def handle(self, *args, **options):
        user, created = user_ensure_demo(email=settings.DEMO_EMAIL, password=settings.DEMO_PASSWORD)
        verb = "Created" if created else "Reset"
        self.stdout.write(
            f"{verb} demo account — email: {user.email}  password: {settings.DEMO_PASSWORD}"
        )
