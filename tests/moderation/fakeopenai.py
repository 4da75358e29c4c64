"""A fake OpenAI moderation endpoint on loopback for the real openai client.

POST /v1/moderations answers according to `server.mode`:
  "clean"                 nothing flagged
  "flag:<cat>[,<cat>...]" those OpenAI categories flagged (e.g. "flag:sexual/minors")
  "500"                   an internal server error
  "sleep"                 waits `server.sleep_seconds` before answering (client times out)
  "garbage"               200 with a body that is not JSON
Every request body is kept in `server.requests` (parsed JSON) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CATEGORIES = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
]


def moderation_body(flagged: set[str], model: str) -> dict:
    return {
        "id": "modr-fake-1",
        "model": model,
        "results": [
            {
                "flagged": bool(flagged),
                "categories": {name: name in flagged for name in CATEGORIES},
                "category_applied_input_types": {
                    name: (["text"] if name in flagged else []) for name in CATEGORIES
                },
                "category_scores": {
                    name: (0.97 if name in flagged else 0.0001) for name in CATEGORIES
                },
            }
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("latin-1")}
        self.server.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        mode = self.server.mode
        if self.path.rstrip("/") != "/v1/moderations":
            return self._send(404, {"error": {"message": "not found"}})
        if mode == "500":
            return self._send(500, {"error": {"message": "boom", "type": "server_error"}})
        if mode == "sleep":
            time.sleep(self.server.sleep_seconds)
            return self._send(200, moderation_body(set(), body.get("model", "")))
        if mode == "garbage":
            return self._send(200, b"<html>not json</html>", content_type="text/html")
        flagged = set(mode.split(":", 1)[1].split(",")) if mode.startswith("flag:") else set()
        return self._send(200, moderation_body(flagged, body.get("model", "")))

    def _send(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "clean"
        self.sleep_seconds = 2.0
        self.requests: list[dict] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
