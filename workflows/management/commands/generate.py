import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from core.errors import InputError
from generation import catalogue
from generation.backends.local import render_job
from generation.models import Generation, State
from generation.render import MOTION_PRESETS
from workflows import pipeline
from workflows.generations import generation_create


class Command(BaseCommand):
    help = "Create a generation through the same service as the website; --wait to see it finish."

    def add_arguments(self, parser):
        parser.add_argument("prompt")
        parser.add_argument("--image", type=Path, help="an input image (image-to-video)")
        parser.add_argument(
            "--endpoint", help="catalogue endpoint id (default: text or image v2.2)"
        )
        parser.add_argument("--resolution")
        parser.add_argument("--duration", type=int)
        parser.add_argument("--aspect-ratio")
        parser.add_argument("--preset", default="static", choices=list(MOTION_PRESETS))
        parser.add_argument("--seed", type=int)
        parser.add_argument(
            "--user",
            default=settings.DEMO_EMAIL,
            help=f"the owner's email (default: the demo account, {settings.DEMO_EMAIL})",
        )
        parser.add_argument("--wait", action="store_true", help="wait for the result")
        parser.add_argument("--timeout", type=float, default=600, help="seconds to wait at most")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(email__iexact=opts["user"]).first()
        if user is None:
            raise CommandError(
                f"No user {opts['user']}; run manage.py ensure_demo_user or pass --user"
            )
        images = []
        if opts["image"]:
            if not opts["image"].is_file():
                raise CommandError(f"No such image file: {opts['image']}")
            images = [opts["image"].read_bytes()]
        endpoint = opts["endpoint"] or (
            catalogue.DEFAULT_IMAGE_ENDPOINT if images else catalogue.DEFAULT_TEXT_ENDPOINT
        )
        inputs = {"prompt": opts["prompt"]}
        for name in ("resolution", "duration", "aspect_ratio"):
            if opts[name] is not None:
                inputs[name] = opts[name]
        try:
            generation = generation_create(
                user=user,
                endpoint_id=endpoint,
                inputs=inputs,
                images=images,
                preset=opts["preset"],
                seed=opts["seed"],
            )
        except InputError as exc:
            raise CommandError(f"Refused: {exc}") from None
        self.stdout.write(f"{generation.pk} {generation.state} ({generation.credit_cost} credits)")
        if not opts["wait"]:
            return
        generation = self._wait(generation, opts["timeout"])
        self.stdout.write(generation.state)
        if generation.state != State.SUCCEEDED:
            raise CommandError(f"{generation.state}: {generation.error_message or 'no output'}")
        self.stdout.write(
            default_storage.path(generation.output.name)
            if hasattr(default_storage, "path") and not settings.AWS_STORAGE_BUCKET_NAME
            else generation.output.name
        )

    def _wait(self, generation: Generation, timeout: float) -> Generation:
        """Drive this one generation through the pipeline while waiting.

        The same claim-guarded steps a worker and a tracker take, so a running cluster can
        share the work safely; without one, this command finishes the job on its own.
        """
        deadline = time.monotonic() + timeout
        last_state = None
        while time.monotonic() < deadline:
            generation.refresh_from_db()
            if generation.state != last_state:
                self.stderr.write(f"… {generation.get_state_display()}")
                last_state = generation.state
            if generation.is_terminal:
                return generation
            if generation.state == State.QUEUED:
                pipeline.generation_submit(generation_id=generation.pk)
            elif generation.state in (State.IN_QUEUE, State.IN_PROGRESS):
                if generation.backend == "local":
                    render_job(generation.provider_request_id)  # no-op if a worker has it
                pipeline.generation_poll(generation_id=generation.pk)
            elif generation.state == State.FINALIZING:
                # Act as the finalize task queued with the row's current lease.
                pipeline.generation_finalize(
                    generation_id=generation.pk, lease=generation.next_check_at
                )
            time.sleep(0.3)
        raise CommandError(f"Timed out after {timeout:.0f} s in state {generation.state}")
