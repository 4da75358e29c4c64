"""A fake fal.ai queue server that the real fal-client 1.0.3 talks to over HTTPS on loopback.

Typical use (pytest)::

    from tests.fakefal import FakeFal, Outcome, configure_fal_client_env

    @pytest.fixture(scope="session")
    def fake_fal():
        with FakeFal() as fake:
            restore = configure_fal_client_env(fake)
            yield fake
            restore()

See README.md for the knobs and the fal_client import-time gotchas.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from .certs import CertFiles, get_cert_files, make_self_signed_cert
from .records import (
    DEFAULT_INFRA_STATUS,
    FAL_TRANSIENT_ERRORS,
    FILE_MODES,
    INJECTABLE,
    InputFetch,
    Outcome,
    RecordedRequest,
    TransientError,
    UploadedFile,
    WebhookDelivery,
)
from .server import FakeFal
from .video import default_mp4, make_mp4

__all__ = [
    "DEFAULT_INFRA_STATUS",
    "FAL_TRANSIENT_ERRORS",
    "FILE_MODES",
    "INJECTABLE",
    "CertFiles",
    "FakeFal",
    "InputFetch",
    "Outcome",
    "RecordedRequest",
    "TransientError",
    "UploadedFile",
    "WebhookDelivery",
    "configure_fal_client_env",
    "default_mp4",
    "get_cert_files",
    "make_mp4",
    "make_self_signed_cert",
    "verify_webhook",
]

_ENV_NAMES = ("FAL_KEY", "FAL_QUEUE_RUN_HOST", "SSL_CERT_FILE")


def configure_fal_client_env(
    fake: FakeFal,
    *,
    key: str = "fake-key-id:fake-key-secret",
    monkeypatch: Any = None,
) -> Callable[[], None]:
    """Point fal_client at ``fake`` whether or not it was imported already; returns ``restore``.

    1. Sets ``FAL_KEY``, ``FAL_QUEUE_RUN_HOST`` (read by fal_client at *import* time) and
       ``SSL_CERT_FILE`` (read by httpx each time an ``httpx.Client`` is *created*).
    2. If ``fal_client`` is already imported, it does NOT reload it (a reload makes new
       ``FalClientHTTPError`` / ``SyncClient`` classes, so ``except`` clauses and
       ``isinstance`` checks in already-imported code would stop matching). Instead it assigns
       the module globals the import would have computed: ``fal_client.client.QUEUE_URL_FORMAT``
       (read at call time by ``submit`` and ``get_handle``) and ``FAL_QUEUE_RUN_HOST`` in
       ``fal_client.auth`` / ``fal_client.client`` (informational). It also points the upload
       hosts, which fal-client 1.0.3 hard-codes with no setting, at the fake:
       ``fal_client.client.REST_URL`` (CDN token, storage upload) and ``CDN_URL`` (CDN upload),
       both read at call time. Not imported yet: it imports it (after setting the variables),
       so there is always a module to point at the fake.
    3. Drops the cached credentials / httpx client of the module-level ``fal_client.sync_client``
       (used by ``fal_client.submit`` etc.) so they are rebuilt with the new key and CA file.
       ``SyncClient`` instances made elsewhere and already used keep their old httpx client:
       make them after this call, or clear their cache (``client.__dict__.pop("_client")``).

    With ``monkeypatch`` (pytest) every change is undone by pytest; otherwise call the
    returned function to restore the previous environment and module globals.
    """
    env = fake.env(key)
    undo: list[Callable[[], None]] = []

    def set_env(name: str, value: str) -> None:
        if monkeypatch is not None:
            monkeypatch.setenv(name, value)
            return
        old = os.environ.get(name)
        os.environ[name] = value
        undo.append(lambda: _restore_env(name, old))

    def set_attr(obj: Any, name: str, value: Any) -> None:
        if monkeypatch is not None:
            monkeypatch.setattr(obj, name, value, raising=False)
            return
        old = getattr(obj, name, None)
        setattr(obj, name, value)
        undo.append(lambda: setattr(obj, name, old))

    previous_queue_host = os.environ.get("FAL_QUEUE_RUN_HOST")
    for name in _ENV_NAMES:
        set_env(name, env[name])

    if "fal_client.client" not in sys.modules:
        _import_fal_client(previous_queue_host)
    auth = sys.modules["fal_client.auth"]
    client = sys.modules["fal_client.client"]
    set_attr(auth, "FAL_QUEUE_RUN_HOST", fake.host)
    set_attr(client, "FAL_QUEUE_RUN_HOST", fake.host)
    set_attr(client, "QUEUE_URL_FORMAT", fake.queue_url_format)
    set_attr(client, "REST_URL", fake.rest_url)
    set_attr(client, "CDN_URL", fake.cdn_url)
    package = sys.modules.get("fal_client")
    if package is not None:
        for attr in ("sync_client", "async_client"):
            instance = getattr(package, attr, None)
            if instance is None:
                continue
            if monkeypatch is not None:
                # undo puts the old (still open) httpx client and credentials back
                for name in _CACHED:
                    monkeypatch.delitem(instance.__dict__, name, raising=False)
            else:
                _drop_cached_http(instance)

    def restore() -> None:
        while undo:
            undo.pop()()
        if package is not None and monkeypatch is None:
            for attr in ("sync_client", "async_client"):
                instance = getattr(package, attr, None)
                if instance is not None:
                    _drop_cached_http(instance)

    return restore


def _import_fal_client(previous_queue_host: str | None) -> None:
    """Import fal_client, then give its host globals the values the environment had before
    ``configure_fal_client_env`` changed it, so that restoring returns to those."""
    import fal_client  # noqa: F401 - reads FAL_QUEUE_RUN_HOST (now the fake's) at import

    auth = sys.modules["fal_client.auth"]
    client = sys.modules["fal_client.client"]
    host = previous_queue_host or f"queue.{auth.FAL_RUN_HOST}"
    auth.FAL_QUEUE_RUN_HOST = client.FAL_QUEUE_RUN_HOST = host
    client.QUEUE_URL_FORMAT = f"https://{host}/"


def _restore_env(name: str, old: str | None) -> None:
    if old is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = old


_CACHED = ("_client", "_auth", "_token_manager")


def _drop_cached_http(instance: Any) -> None:
    """Forget a fal SyncClient/AsyncClient's cached auth and httpx client (lazily rebuilt)."""
    cached = instance.__dict__
    old = cached.get("_client")
    for name in _CACHED:
        cached.pop(name, None)
    close = getattr(old, "close", None)  # AsyncClient caches an awaitable wrapper: skip it
    if callable(close) and not inspect.iscoroutinefunction(close):
        with contextlib.suppress(Exception):  # best effort; the client is discarded anyway
            close()


def verify_webhook(
    headers: Any, body: bytes, jwks: dict, *, now: float | None = None, tolerance_s: int = 300
) -> bool:
    """Reference check of a fal webhook (Ed25519 over request id, user id, timestamp, body hash).

    Handy for tests of the fake itself; the product has its own verifier.
    """
    import base64
    import hashlib
    import time

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def get(name: str) -> str | None:
        for key, value in dict(headers).items():
            if key.lower() == name.lower():
                return value
        return None

    request_id = get("X-Fal-Webhook-Request-Id")
    user_id = get("X-Fal-Webhook-User-Id")
    timestamp = get("X-Fal-Webhook-Timestamp")
    signature = get("X-Fal-Webhook-Signature")
    if not (request_id and user_id and timestamp and signature):
        return False
    try:
        if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
            return False
        raw_signature = bytes.fromhex(signature)
    except ValueError:
        return False
    message = f"{request_id}\n{user_id}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
    for entry in jwks.get("keys", []):
        x = entry.get("x", "")
        try:
            key = Ed25519PublicKey.from_public_bytes(
                base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            )
            key.verify(raw_signature, message.encode())
            return True
        except (InvalidSignature, ValueError):
            continue
    return False
