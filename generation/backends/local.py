"""The offline stand-in for fal: renders real MP4s on this machine, with a simulated queue.

It behaves like a remote provider so that the rest of the pipeline cannot tell the difference:
submit hands the job to a render task and returns at once, status reports a queue position and
then progress, and the finished file is fetched and copied like any provider's output. Each
request is a folder under LOCAL_RENDER_DIR, so every process on the machine sees the same state.
"""

import json
import math
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from core.queueing import enqueue

from ..leases import heartbeat
from ..render import RenderSpec, frame_size, nearest_aspect_ratio, render_video
from .base import Completed, Progress, ProviderError, Submitted

CHUNK = 1024 * 1024
# A render renews its lease (the `rendering` marker's mtime) every RENDER_BEAT_SECONDS; one
# not renewed for RENDER_LEASE_SECONDS died with its worker (SIGKILL, OOM: on Redis the task
# is then lost) and the next status poll queues it again. Five missed beats, so a busy
# machine never takes a live render for dead.
RENDER_BEAT_SECONDS = 2.0
RENDER_LEASE_SECONDS = 10.0
# A render not started this long after its queue time is over was lost with the broker's
# message (or waits behind others): queue it again, at most once per this many seconds. A
# duplicate is harmless, the marker lets one of them render.
RENDER_PICKUP_SECONDS = 30.0


class LocalBackend:
    name = "local"

    @staticmethod
    def job_dir(request_id: str) -> Path:
        return Path(settings.LOCAL_RENDER_DIR) / request_id

    def submit(self, generation, *, webhook_url: str | None) -> Submitted:
        request_id = uuid.uuid4().hex
        folder = self.job_dir(request_id)
        folder.mkdir(parents=True)
        image_paths = []
        images = list(generation.inputs.filter(kind="image").order_by("position"))
        for index, image in enumerate(images):
            path = folder / f"input-{index}{Path(image.file.name).suffix}"
            with default_storage.open(image.file.name, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            image_paths.append(str(path))
        first_input = images[0] if images else None
        aspect = generation.aspect_ratio or (
            nearest_aspect_ratio(first_input.width, first_input.height) if first_input else "16:9"
        )
        width, height = frame_size(generation.resolution, aspect)
        job = {
            "submitted_at": time.time(),
            "queue_seconds": settings.LOCAL_QUEUE_SECONDS,
            "spec": {
                "width": width,
                "height": height,
                "duration_s": generation.duration,
                "preset": generation.preset,
                "seed": generation.seed,
                "prompt": generation.prompt,
                "image_path": image_paths[0] if image_paths else None,
                "image_paths": image_paths,
                "title": f"Promptreel {generation.pk}",
            },
        }
        (folder / "job.json").write_text(json.dumps(job))
        enqueue("generation.tasks.local_render", request_id, task_name=f"render {request_id}")
        return Submitted(request_id=request_id, queue_position=self._position(job))

    @staticmethod
    def _position(job: dict) -> int:
        waited = time.time() - job["submitted_at"]
        return max(0, math.ceil((job["queue_seconds"] - waited) / 0.5))

    def _job(self, request_id: str) -> dict:
        try:
            return json.loads((self.job_dir(request_id) / "job.json").read_text())
        except FileNotFoundError:
            raise ProviderError(
                "request_not_found",
                f"The offline renderer has no job {request_id}",
                retryable=False,
            ) from None

    def status(self, generation) -> Progress:
        folder = self.job_dir(generation.provider_request_id)
        job = self._job(generation.provider_request_id)
        if (folder / "canceled").exists():
            return Progress("completed", error="Request cancelled", error_type="canceled")
        position = self._position(job)
        if position > 0:
            return Progress("in_queue", queue_position=position)
        if (folder / "error.txt").exists():
            return Progress(
                "completed", error=(folder / "error.txt").read_text(), error_type="render_error"
            )
        if (folder / "output.mp4").exists():
            metrics = json.loads((folder / "metrics.json").read_text())
            return Progress("completed", metrics=metrics)
        self._redo_if_lost(generation.provider_request_id, job)
        return Progress("in_progress", logs=[{"message": "Rendering offline"}])

    def _redo_if_lost(self, request_id: str, job: dict) -> None:
        """Queue the render again if its task was lost: never started, or its lease ran out."""
        folder = self.job_dir(request_id)
        now = time.time()
        try:
            silent = now - (folder / "rendering").stat().st_mtime
        except FileNotFoundError:
            silent = None
        if silent is None:
            waited = now - job["submitted_at"] - job["queue_seconds"]
            requeued = folder / "requeued"
            last = requeued.stat().st_mtime if requeued.exists() else job["submitted_at"]
            if waited < RENDER_PICKUP_SECONDS or now - last < RENDER_PICKUP_SECONDS:
                return
            requeued.touch()
        elif silent > RENDER_LEASE_SECONDS:
            try:
                # Atomic: of the pollers that saw the stale lease, one takes it over.
                (folder / "rendering").rename(folder / f"rendering.lost-{uuid.uuid4().hex}")
            except FileNotFoundError:
                return
        else:
            return
        enqueue("generation.tasks.local_render", request_id, task_name=f"render {request_id}")

    def result(self, generation) -> Completed:
        path = self.job_dir(generation.provider_request_id) / "output.mp4"
        if not path.exists():
            raise ProviderError(
                "result_missing", "The offline render has no output", retryable=False
            )
        return Completed(video_url=path.as_uri(), content_type="video/mp4")

    @contextmanager
    def open_video(self, completed: Completed) -> Iterator[Iterator[bytes]]:
        path = Path(completed.video_url.removeprefix("file://"))
        with open(path, "rb") as stream:
            yield iter(lambda: stream.read(CHUNK), b"")

    def cancel(self, generation) -> bool:
        folder = self.job_dir(generation.provider_request_id)
        if (folder / "output.mp4").exists() or (folder / "error.txt").exists():
            return False
        (folder / "canceled").touch()
        return True


def release_render(request_id: str) -> None:
    """A render interrupted by a stopping worker: drop its marker and partial file, so the
    task queued again renders it (generation.tasks.local_render)."""
    folder = LocalBackend.job_dir(request_id)
    if not (folder / "output.mp4").exists():
        (folder / "output.part.mp4").unlink(missing_ok=True)
        (folder / "rendering").unlink(missing_ok=True)


def render_job(request_id: str) -> bool:
    """Do the provider's work for one request (a django-q task). True if this call rendered it."""
    folder = LocalBackend.job_dir(request_id)
    if (folder / "canceled").exists() or (folder / "output.mp4").exists():
        return False
    marker = folder / "rendering"
    try:
        # Creating the marker is atomic, so of all the processes that try, one renders.
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(handle, str(os.getpid()).encode())  # who renders it, for an operator
    os.close(handle)
    job = json.loads((folder / "job.json").read_text())
    started = time.monotonic()
    # Our own partial file: a render taken for dead may still be writing its own.
    partial = folder / f"output.{uuid.uuid4().hex}.part.mp4"

    def renew() -> bool:
        try:
            os.utime(marker)
        except FileNotFoundError:
            return False  # taken over by a new render (we were thought dead)
        return True

    try:
        with heartbeat(renew, every=RENDER_BEAT_SECONDS, longest=settings.Q_CLUSTER["timeout"]):
            render_video(RenderSpec(**job["spec"]), str(partial))
    except Exception as exc:
        (folder / "error.txt").write_text(f"The offline renderer failed: {exc}")
        raise
    (folder / "metrics.json").write_text(json.dumps({"inference_time": time.monotonic() - started}))
    # The rename is what makes the output visible, so a reader never sees half a file.
    partial.replace(folder / "output.mp4")
    return True
