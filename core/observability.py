"""Request ids, JSON logs and per-request metrics.

Every request gets an id (the proxy's X-Request-ID if it is a sane token, else a new one),
sent back in X-Request-ID and put on every log line written while it is handled; a job's
lines carry its generation id (log_context). LOG_FORMAT=json writes one JSON object a line.
"""

import contextvars
import json
import logging
import re
import time
import uuid
from contextlib import contextmanager

from . import metrics

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)


def _fields() -> dict:
    return _context.get() or {}


_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@contextmanager
def log_context(**fields):
    """Add fields (request_id, generation_id) to every log line written inside the block."""
    token = _context.set({**_fields(), **{k: str(v) for k, v in fields.items()}})
    try:
        yield
    finally:
        _context.reset(token)


class RequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        request.id = sent if _SANE_ID.fullmatch(sent) else uuid.uuid4().hex
        started = time.monotonic()
        with log_context(request_id=request.id):
            response = self.get_response(request)
        response["X-Request-ID"] = request.id
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.HTTP_REQUESTS.labels(method, str(response.status_code)).inc()
        metrics.HTTP_SECONDS.labels(method).observe(time.monotonic() - started)
        return response


# Label values come from a fixed set: a client cannot grow the metrics without bound.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class ContextFilter(logging.Filter):
    """Copies the log context onto each record (for both formatters)."""

    def filter(self, record):
        record.log_context = _fields()
        for name, value in record.log_context.items():
            setattr(record, name, value)
        record.request_id = getattr(record, "request_id", "-")
        return True


class JsonFormatter(logging.Formatter):
    converter = time.gmtime  # times in UTC, as the Z says

    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        line.update(getattr(record, "log_context", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
