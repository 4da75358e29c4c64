"""fal's files: result files served with Range, and the two upload protocols of fal-client
1.0.3 (CDN token + CDN POST; storage initiate + signed PUT) with the files they store.
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from .records import UploadedFile, _File
from .transport import _json_resp, _Resp

CDN_TOKEN_TTL_S = 3600


class Storage:
    """``FakeFal``'s file store and upload endpoints.

    Uses ``FakeFal``'s ``_files``, ``_uploads``, ``_cdn_tokens`` and ``_pending_puts`` under
    ``_lock``; auth and injected failures are ``FakeFal._check_key`` and ``FakeFal._injected``.
    """

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    def add_file(
        self,
        name: str,
        data: bytes | None = None,
        *,
        mode: str = "mp4",
        content_type: str | None = None,
        size: int | None = None,
        bytes_per_s: float | None = None,
    ) -> str:
        """Serve a file at ``/files/<name>`` (default: the default MP4); returns its URL."""
        spec = self._make_file(mode, data, size, bytes_per_s)
        if content_type is not None:
            spec.content_type = content_type
        with self._lock:
            self._files[name] = spec
        return self.file_url(name)

    def remove_file(self, name: str) -> None:
        with self._lock:
            self._files.pop(name, None)

    @property
    def uploads(self) -> list[UploadedFile]:
        """Every file uploaded (CDN or storage) since the last ``reset()``, oldest first."""
        with self._lock:
            return list(self._uploads)

    @property
    def rest_url(self) -> str:
        """The value for ``fal_client.client.REST_URL`` (token and storage uploads)."""
        return self.base_url

    @property
    def cdn_url(self) -> str:
        """The value for ``fal_client.client.CDN_URL`` (the CDN upload)."""
        return self.base_url

    def _upload_call(
        self,
        kind: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> _Resp:
        """fal-client 1.0.3's uploads: CDN token + CDN POST, or storage initiate + signed PUT."""
        delay = self.response_delay_s
        if delay and delay > 0:
            self._stopping.wait(delay)
        if kind in ("upload_token", "upload_initiate"):
            refused = self._check_key(headers)
            if refused is not None:
                return refused
        elif kind == "upload":
            scheme, _, token = headers.get("authorization", "").partition(" ")
            with self._lock:
                expiry = self._cdn_tokens.get(token.strip())
            if scheme != "Bearer" or expiry is None or expiry < time.time():
                return _json_resp(401, {"detail": "Invalid or expired upload token"})
        with self._lock:
            queue = self._injections[kind]
            injection = queue.popleft() if queue else None
        if injection is not None:
            return self._injected(injection, None)
        storage_type = (query.get("storage_type") or [""])[0]
        if kind == "upload_token":
            if storage_type != "fal-cdn-v3":
                return _json_resp(400, {"detail": f"Unsupported storage type {storage_type!r}"})
            token = uuid.uuid4().hex
            expires = time.time() + CDN_TOKEN_TTL_S
            with self._lock:
                self._cdn_tokens[token] = expires
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
            return _json_resp(
                200,
                {
                    "token": token,
                    "token_type": "Bearer",
                    "base_url": self.cdn_url,
                    "expires_at": stamp,
                },
            )
        if kind == "upload":
            content_type = headers.get("content-type") or "application/octet-stream"
            name = _upload_name(headers.get("x-fal-file-name"), content_type)
            url = self._store_upload(name, body, content_type, "cdn")
            return _json_resp(
                200,
                {
                    "access_url": url,
                    "content_type": content_type,
                    "file_name": name.rsplit("/", 1)[-1],
                    "file_size": len(body),
                },
            )
        if kind == "upload_initiate":
            if storage_type != "gcs":
                return _json_resp(400, {"detail": f"Unsupported storage type {storage_type!r}"})
            try:
                spec = json.loads(body)
                content_type = str(spec["content_type"])
                file_name = spec.get("file_name")
            except (ValueError, KeyError, TypeError):
                return _json_resp(422, {"detail": "Expected {file_name, content_type}"})
            name = _upload_name(file_name, content_type)
            put_id = uuid.uuid4().hex
            with self._lock:
                self._pending_puts[put_id] = (name, content_type)
            return _json_resp(
                200,
                {
                    "upload_url": f"{self.base_url}/storage/put/{put_id}"
                    f"?X-Goog-Expires=3600&X-Goog-Signature={uuid.uuid4().hex}",
                    "file_url": self.file_url(name),
                },
            )
        # upload_put: the signed URL storage handed out (no fal auth: the URL is the grant)
        put_id = path[len("/storage/put/") :]
        with self._lock:
            pending = self._pending_puts.pop(put_id, None)
        if pending is None:
            return _Resp(403, b"SignatureDoesNotMatch", {"Content-Type": "text/plain"})
        name, declared = pending
        self._store_upload(name, body, headers.get("content-type") or declared, "storage")
        return _Resp(200, b"")

    def _store_upload(self, name: str, data: bytes, content_type: str, via: str) -> str:
        url = self.file_url(name)
        spec = _File("upload", data, len(data), content_type)
        with self._lock:
            self._files[name] = spec
            upload = UploadedFile(url, data, content_type, name.rsplit("/", 1)[-1], via)
            self._uploads.append(upload)
        return url

    def _serve_file(self, name: str, headers: dict[str, str]) -> _Resp:
        with self._lock:
            spec = self._files.get(name)
        if spec is None or spec.mode == "missing":
            return _Resp(404, b"Not Found", {"Content-Type": "text/plain"})
        if spec.expires_mono is not None and time.monotonic() >= spec.expires_mono:
            return _Resp(404, b"Not Found", {"Content-Type": "text/plain"})
        size = spec.size
        rng = _parse_range(headers.get("range"), size)
        out_headers = {"Content-Type": spec.content_type, "Accept-Ranges": "bytes"}
        if rng == "unsatisfiable":
            out_headers["Content-Range"] = f"bytes */{size}"
            return _Resp(416, b"", out_headers)
        if rng is None:
            status, start, end = 200, 0, size - 1
        else:
            status, (start, end) = 206, rng  # type: ignore[misc]
            out_headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        out_headers["Content-Length"] = str(length)
        rate = spec.bytes_per_s or self.file_bytes_per_s
        stop_at = length // 2 if spec.mode == "truncated" else length

        def stream(wfile: Any) -> None:
            began = time.monotonic()
            sent = 0
            piece = 65536 if not rate else max(512, min(65536, int(rate / 20)))
            for chunk in _file_chunks(spec, start, start + stop_at, piece):
                if self._stopping.is_set():
                    raise ConnectionResetError("fake stopping")
                if rate:
                    ahead = (sent + len(chunk)) / rate - (time.monotonic() - began)
                    if ahead > 0 and self._stopping.wait(ahead):
                        raise ConnectionResetError("fake stopping")
                wfile.write(chunk)
                sent += len(chunk)
            if stop_at < length:
                raise ConnectionResetError("truncated on purpose")

        resp = _Resp(status, b"", out_headers)
        resp.stream = stream
        return resp


_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive), None (serve whole body) or "unsatisfiable"."""
    if not header or "," in header:
        return None
    match = _RANGE_RE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    end = min(end, size - 1)
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


def _file_chunks(spec: _File, start: int, stop: int, piece: int) -> Iterator[bytes]:
    """Bytes [start, stop) of a file; ``huge`` files are the MP4 followed by zero padding."""
    data = spec.data
    position = start
    zeros = bytes(piece)
    while position < stop:
        take = min(piece, stop - position)
        if position < len(data):
            take = min(take, len(data) - position)
            yield data[position : position + take]
        else:
            yield zeros[:take]
        position += take


def _upload_kind(method: str, path: str) -> str | None:
    if method == "POST" and path == "/storage/auth/token":
        return "upload_token"
    if method == "POST" and path == "/files/upload":
        return "upload"
    if method == "POST" and path == "/storage/upload/initiate":
        return "upload_initiate"
    if method == "PUT" and path.startswith("/storage/put/"):
        return "upload_put"
    return None


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _upload_name(file_name: str | None, content_type: str) -> str:
    """``uploads/<random>/<name>``: a fresh path per upload, like fal's CDN."""
    name = _SAFE_NAME.sub("_", (file_name or "").rsplit("/", 1)[-1]).strip("._")
    if not name:
        extension = mimetypes.guess_extension(content_type.split(";")[0].strip()) or ".bin"
        name = f"upload{extension}"
    return f"uploads/{uuid.uuid4().hex[:16]}/{name}"
