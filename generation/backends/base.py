from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

# The code of a submit whose outcome is unknown: the POST may have reached the provider
# (a read timeout, a connection reset after sending). Never resubmitted blindly
# (workflows.pipeline.generation_submit reconciles it first).
SUBMIT_UNCONFIRMED = "submit_unconfirmed"


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether trying again can help."""

    def __init__(self, code: str, message: str, *, retryable: bool):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Submitted:
    request_id: str
    queue_position: int | None = None
    urls: dict = field(default_factory=dict)
    gateway_request_id: str = ""
    arguments: dict | None = None  # as sent, media URLs included, when they differ from the row's


@dataclass(frozen=True)
class Progress:
    """Where a request stands: stage is 'in_queue', 'in_progress' or 'completed'."""

    stage: str
    queue_position: int | None = None
    logs: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None
    # fal's id of the run that answered, when its status names one (a fal-side retry).
    gateway_request_id: str = ""


@dataclass(frozen=True)
class Completed:
    """A finished video at the provider: a URL to fetch it from, and its declared type."""

    video_url: str
    content_type: str | None = None


class VideoBackend(Protocol):
    name: str

    def submit(self, generation, *, webhook_url: str | None) -> Submitted:
        """Raises ProviderError(SUBMIT_UNCONFIRMED) when the request may have left."""
        ...

    def status(self, generation) -> Progress: ...

    def result(self, generation) -> Completed: ...

    def open_video(self, completed: Completed) -> AbstractContextManager[Iterator[bytes]]:
        """Stream the video's bytes in chunks."""
        ...

    def cancel(self, generation) -> bool:
        """Ask the provider to cancel; False if it had already finished."""
        ...
