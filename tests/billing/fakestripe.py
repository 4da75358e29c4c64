"""A small Stripe API on loopback for stripe-python's real client (base_addresses)."""

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Call:
    method: str
    path: str
    form: dict
    headers: dict


class FakeStripe:
    def __init__(self):
        self.calls: list[Call] = []
        self.fail_next = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                call = Call("POST", self.path, dict(parse_qsl(body)), dict(self.headers))
                fake.calls.append(call)
                if fake.fail_next:
                    fake.fail_next -= 1
                    return self._send(500, {"error": {"type": "api_error", "message": "down"}})
                status, payload = fake.answer(call)
                self._send(status, payload)

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:12]}")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, call: Call):
        token = uuid.uuid4().hex[:14]
        if call.path == "/v1/customers":
            return 200, {
                "id": f"cus_{token}",
                "object": "customer",
                "email": call.form.get("email"),
                "metadata": {"account_id": call.form.get("metadata[account_id]")},
            }
        if call.path == "/v1/checkout/sessions":
            return 200, {
                "id": f"cs_test_{token}",
                "object": "checkout.session",
                "mode": call.form.get("mode"),
                "customer": call.form.get("customer"),
                "url": f"https://checkout.stripe.test/c/pay/cs_test_{token}",
                "status": "open",
            }
        if call.path == "/v1/billing_portal/sessions":
            return 200, {
                "id": f"bps_{token}",
                "object": "billing_portal.session",
                "customer": call.form.get("customer"),
                "url": f"https://billing.stripe.test/p/session/{token}",
            }
        return 404, {"error": {"type": "invalid_request_error", "message": "unknown path"}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def paths(self) -> list[str]:
        return [call.path for call in self.calls]
