"""django-q2 tasks: thin, they take ids and call the pipeline."""

from datetime import datetime

from . import pipeline, tracking
from .backends.local import render_job


def finalize(generation_id: str, lease: str | None = None) -> None:
    pipeline.generation_finalize(
        generation_id=generation_id,
        lease=datetime.fromisoformat(lease) if lease else None,
    )


def local_render(request_id: str) -> None:
    render_job(request_id)


def reap() -> dict:
    return tracking.reap()
