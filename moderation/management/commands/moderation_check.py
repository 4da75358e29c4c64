"""Try a prompt (and image) against the policy: `manage.py moderation_check "a prompt"`."""

from pathlib import Path

from django.core.management.base import BaseCommand

from moderation.services import prompt_check


class Command(BaseCommand):
    help = "Show the moderation decision for a prompt (rules, plus OpenAI when a key is set)."

    def add_arguments(self, parser):
        parser.add_argument("prompt")
        parser.add_argument("--image", action="append", default=[], help="an input image file")

    def handle(self, *args, prompt, image, **options):
        images = [Path(path).read_bytes() for path in image]
        decision = prompt_check(user=None, prompt=prompt, images=images)
        self.stdout.write(f"decision: {decision.action}")
        if not decision.allowed:
            self.stdout.write(f"policy:   {decision.title or '-'} ({decision.category or '-'})")
            self.stdout.write(f"source:   {decision.source}")
            self.stdout.write(f"user sees: {decision.explanation}")
            self.stdout.write(f"matched:  {decision.detail}")
