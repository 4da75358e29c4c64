"""django-q2 tasks: thin, they take ids and call the pipeline."""

from datetime import datetime

from . import pipeline, tracking


def finalize(generation_id: str, lease: str | None = None) -> None:
    pipeline.generation_finalize(
        generation_id=generation_id,
        lease=datetime.fromisoformat(lease) if lease else None,
    )


def reap() -> dict:
    return tracking.reap()
