"""fal's webhooks: the JWKS keys, the ED25519 signature, and delivery with duplicates,
delays, drops and retries.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .records import WebhookDelivery
from .transport import _is_loopback_host


class Webhooks:
    """``FakeFal``'s webhook keys and deliveries.

    Uses ``FakeFal``'s ``_signing_key``/``_published``/``_unpublished_key`` and
    ``_drop_next_webhooks`` under ``_lock``, ``_deliveries`` under ``_deliveries_cond`` and its
    ``_http`` client; retries are scheduled through ``QueueSimulation._push``.
    """

    def drop_next_webhooks(self, n: int = 1) -> None:
        """Send no webhook for the next ``n`` requests that complete."""
        with self._lock:
            self._drop_next_webhooks += n

    def rotate_keys(self, *, keep_old: bool = False) -> Ed25519PublicKey:
        """Sign with a fresh key and publish it; drop the old key unless ``keep_old``."""
        key = Ed25519PrivateKey.generate()
        with self._lock:
            self._published = [key, *self._published] if keep_old else [key]
            self._signing_key = key
        return key.public_key()

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._deliveries_cond:
            return list(self._deliveries)

    def wait_for_webhooks(self, n: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until at least ``n`` delivery attempts were recorded; returns them all."""
        deadline = time.monotonic() + timeout
        with self._deliveries_cond:
            while len(self._deliveries) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._deliveries_cond.wait(remaining)
            return list(self._deliveries)

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self._published)
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(_raw_public(key)),
                    "kid": _kid(key),
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for key in keys
            ]
        }

    @property
    def public_keys(self) -> list[Ed25519PublicKey]:
        with self._lock:
            return [key.public_key() for key in self._published]

    def sign_webhook(
        self,
        request_id: str,
        body: bytes,
        *,
        timestamp: int | None = None,
        user_id: str | None = None,
        unpublished: bool | None = None,
    ) -> dict[str, str]:
        """The four X-Fal-Webhook-* headers for ``body`` (lets tests forge/replay webhooks)."""
        if timestamp is None:
            timestamp = int(time.time()) + int(self.webhook_timestamp_offset_s)
        user = self.user_id if user_id is None else user_id
        if unpublished is None:
            unpublished = self.webhook_sign_with_unpublished_key
        with self._lock:
            key = self._unpublished_key if unpublished else self._signing_key
        message = f"{request_id}\n{user}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": key.sign(message.encode()).hex(),
        }

    def webhook_body(self, request_id: str) -> bytes | None:
        """The webhook body a completed request sends (None before completion)."""
        with self._lock:
            rec = self._reqs[request_id]
            self._state(rec, time.monotonic())
            return rec.webhook_payload

    def _deliver(self, rid: str, url: str, body: bytes, attempt: int, copy: int) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "fakefal-webhooks/1.0"}
        headers.update(self.sign_webhook(rid, body))
        status: int | None = None
        error: str | None = None
        try:
            if self.webhook_sender is not None:
                status = int(self.webhook_sender(url, headers, body))
            elif not _is_loopback_host(urlsplit(url).hostname):
                error = "refused: fakefal only delivers webhooks to loopback addresses"
            elif self._http is None:
                error = "fake stopped"
            else:
                status = self._http.post(url, content=body, headers=headers).status_code
        except Exception as exc:  # transport errors, or the custom sender raising
            error = f"{type(exc).__name__}: {exc}"
        delivery = WebhookDelivery(url, rid, body, headers, status, error, attempt, copy)
        with self._deliveries_cond:
            self._deliveries.append(delivery)
            self._deliveries_cond.notify_all()
        failed = status is None or not 200 <= status < 300
        refused = error is not None and error.startswith("refused")
        if failed and not refused and attempt <= int(self.webhook_retries):
            with self._cond:
                when = time.monotonic() + float(self.webhook_retry_delay_s) * (2 ** (attempt - 1))
                self._push(when, "deliver", (rid, url, body, attempt + 1, copy))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _kid(key: Ed25519PrivateKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]
