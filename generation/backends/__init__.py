"""Video backends: one small interface (base.VideoBackend), an offline and a fal implementation."""

from django.conf import settings

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

        return LocalBackend()
    if name == "fal":
        from .fal import FalBackend

        return FalBackend()
    raise ValueError(f"Unknown video backend {name!r}")
