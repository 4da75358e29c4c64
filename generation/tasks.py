"""django-q2 tasks of the generation core: thin, they take ids."""

from .backends.local import render_job


def local_render(request_id: str) -> None:
    render_job(request_id)
