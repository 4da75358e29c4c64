"""A fake OpenAI moderation endpoint on loopback for the real openai client.

POST /v1/moderations answers according to `server.mode`:
  "clean"                       nothing flagged
  "flag:<cat>[,<cat>...]"       those OpenAI categories flagged (e.g. "flag:sexual/minors")
  "flag-image:<cat>[,<cat>...]" flagged only in requests that carry an image, and only the
                                categories OpenAI judges images for (IMAGE_CATEGORIES)
  "500"                         an internal server error
  "sleep"                       waits `server.sleep_seconds` before answering (client times out)
  "garbage"                     200 with a body that is not JSON
Image inputs are checked as the real API does: at most one `image_url` item per request (400
`too_many_images`, OpenAI's own wording), and a data URI must hold a decodable image (400
`invalid_image`; the real wording of that one is unconfirmed). A multi-modal input gets one
result; its `category_applied_input_types` list the input types each category was judged on.
Every request body is kept in `server.requests` (parsed JSON) for assertions.

POST /v1/chat/completions (storyboards, creative/storyboard.py) answers with
`server.chat_content` as the assistant's message (a JSON string of scenes by default, built
from the user's text: one scene per sentence, at most 5), or per `server.chat_mode`:
"ok", "500", "garbage" (a message that is not JSON).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, UnidentifiedImageError

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


# The categories omni-moderation judges images for (OpenAI's moderation guide); the others
# are text-only.
IMAGE_CATEGORIES = {
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "violence",
    "violence/graphic",
}


def input_types(model_input) -> set[str]:
    if isinstance(model_input, list) and any(isinstance(item, dict) for item in model_input):
        return {item.get("type", "").removesuffix("_url") for item in model_input}
    return {"text"}


def moderation_body(flagged: set[str], model: str, types: frozenset = frozenset({"text"})) -> dict:
    def applied(name: str) -> list[str]:
        judged = [kind for kind in ("text", "image") if kind in types]
        return [k for k in judged if k == "text" or name in IMAGE_CATEGORIES]

    return {
        "id": "modr-fake-1",
        "model": model,
        "results": [
            {
                "flagged": bool(flagged),
                "categories": {name: name in flagged for name in CATEGORIES},
                "category_applied_input_types": {name: applied(name) for name in CATEGORIES},
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
        if self.path.rstrip("/") == "/v1/chat/completions":
            return self._chat(body)
        if self.path.rstrip("/") != "/v1/moderations":
            return self._send(404, {"error": {"message": "not found"}})
        if mode == "500":
            return self._send(500, {"error": {"message": "boom", "type": "server_error"}})
        if mode == "sleep":
            time.sleep(self.server.sleep_seconds)
            return self._send(200, moderation_body(set(), body.get("model", "")))
        if mode == "garbage":
            return self._send(200, b"<html>not json</html>", content_type="text/html")
        model_input = body.get("input")
        refused = _image_error(model_input)
        if refused:
            return self._send(400, {"error": {"type": "invalid_request_error", **refused}})
        types = frozenset(input_types(model_input))
        flagged = set()
        if mode.startswith("flag:"):
            flagged = set(mode.split(":", 1)[1].split(","))
        elif mode.startswith("flag-image:") and "image" in types:
            flagged = set(mode.split(":", 1)[1].split(",")) & IMAGE_CATEGORIES
        return self._send(200, moderation_body(flagged, body.get("model", ""), types))

    def _chat(self, body):
        if self.server.chat_mode == "500":
            return self._send(500, {"error": {"message": "boom", "type": "server_error"}})
        if self.server.chat_mode == "garbage":
            content = "Sure! Here are your scenes: one, two."
        elif self.server.chat_content is not None:
            content = self.server.chat_content
        else:
            text = next(
                (m["content"] for m in body.get("messages", []) if m.get("role") == "user"), ""
            )
            sentences = [s.strip() for s in text.replace("\n", " ").split(".") if s.strip()]
            scenes = [{"prompt": f"Visual: {sentence}"} for sentence in sentences[:5]]
            content = json.dumps({"scenes": scenes})
        return self._send(
            200,
            {
                "id": "chatcmpl-fake-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            },
        )

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


def _image_error(model_input) -> dict | None:
    """What the real API says about the image items of a request, or None if they are fine."""
    if not isinstance(model_input, list):
        return None
    images = [
        item for item in model_input if isinstance(item, dict) and item.get("type") == "image_url"
    ]
    if len(images) > 1:
        return {
            "message": f"Number of images ({len(images)}) exceeds maximum of 1",
            "param": "input",
            "code": "too_many_images",
        }
    for item in images:
        url = (item.get("image_url") or {}).get("url", "")
        if not url.startswith("data:"):
            continue  # the real API downloads links; the fake has no internet to do so
        try:
            header, payload = url.split(",", 1)
            Image.open(io.BytesIO(base64.b64decode(payload, validate=True))).verify()
        except (ValueError, binascii.Error, UnidentifiedImageError, OSError):
            return {"message": "Invalid image.", "param": "input", "code": "invalid_image"}
        if not header.startswith("data:image/"):
            return {"message": "Invalid image.", "param": "input", "code": "invalid_image"}
    return None


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "clean"
        self.chat_mode = "ok"
        self.chat_content: str | None = None
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
