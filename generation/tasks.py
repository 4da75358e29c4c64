"""django-q2 tasks of the generation core: thin, they take ids."""

from core.shutdown import hands_back_on_stop

from .backends.local import release_render, render_job


def _release_render(request_id: str):
    release_render(request_id)
    return (request_id,), {}


@hands_back_on_stop(release=_release_render)
def local_render(request_id: str) -> None:
    render_job(request_id)
