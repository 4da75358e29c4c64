"""Video backends: one small interface (base.VideoBackend), an offline and a fal implementation."""

from django.conf import settings

from core import metrics

from .base import SUBMIT_UNCONFIRMED, Completed, ProviderError, Submitted, VideoBackend

__all__ = [
    "SUBMIT_UNCONFIRMED",
    "Completed",
    "ProviderError",
    "Submitted",
    "VideoBackend",
    "get_backend",
]


def get_backend(name: str | None = None) -> VideoBackend:
    """The backend a generation row names, or the configured one for new rows."""
    name = name or settings.VIDEO_BACKEND
    if name == "local":
        from .local import LocalBackend

        return Counted(LocalBackend())
    if name == "fal":
        from .fal import FalBackend

        return Counted(FalBackend())
    raise ValueError(f"Unknown video backend {name!r}")


class Counted:
    """A backend whose calls about a generation (submit, status, result, cancel) are counted
    for /metrics by endpoint and outcome: ok, or the ProviderError's code."""

    COUNTED = frozenset({"submit", "status", "result", "cancel"})

    def __init__(self, backend: VideoBackend):
        self._backend = backend
        self.name = backend.name

    def __getattr__(self, attribute):
        method = getattr(self._backend, attribute)
        if attribute not in self.COUNTED:
            return method

        def counted(generation, *args, **kwargs):
            outcome = "ok"
            try:
                return method(generation, *args, **kwargs)
            except ProviderError as exc:
                outcome = exc.code
                raise
            except Exception:
                outcome = "exception"
                raise
            finally:
                metrics.PROVIDER_CALLS.labels(
                    backend=self.name,
                    endpoint=generation.endpoint_id,
                    call=attribute,
                    outcome=outcome,
                ).inc()

        return counted
