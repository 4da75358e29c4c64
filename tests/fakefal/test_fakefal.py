"""Tests of the fake fal server, driven by the real, unpatched fal-client 1.0.3.

Run: .venv/bin/python -m pytest tests/fakefal -q -p no:django
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import random
import threading
import time

import av
import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.fakefal import (
    FakeFal,
    Outcome,
    TransientError,
    configure_fal_client_env,
    verify_webhook,
)

APP = "fal-ai/pika/v2.2/text-to-video"


# ------------------------------------------------------------------------------------ fixtures
class _Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.answer = 200
        self.cond = threading.Condition()
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/fal"

    def wait(self, n: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.hits) < n and time.monotonic() < deadline:
                self.cond.wait(deadline - time.monotonic())
            return list(self.hits)


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.cond:
            self.server.hits.append((dict(self.headers.items()), body))
            self.server.cond.notify_all()
        self.send_response(self.server.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture(scope="module")
def fake():
    with FakeFal(queue_time=0.05, inference_time=0.15) as server:
        restore = configure_fal_client_env(server)
        try:
            yield server
        finally:
            restore()


@pytest.fixture(scope="module")
def fal(fake):
    # Import only after the environment points at the fake (FAL_QUEUE_RUN_HOST is read at
    # import time; configure_fal_client_env also patches an earlier import).
    import fal_client

    return fal_client


@pytest.fixture
def client(fal):
    c = fal.SyncClient()
    yield c
    c._client.close()


@pytest.fixture(autouse=True)
def _clean(fake):
    fake.reset()
    yield
    assert fake.errors == []


@pytest.fixture
def receiver():
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(2)


def _https(fake: FakeFal) -> httpx.Client:
    return fake.http_client(timeout=5.0)


def _poll(fal, handle, timeout: float = 5.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = handle.status(with_logs=True)
        seen.append(status)
        if isinstance(status, fal.Completed):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"not completed: {seen[-1:]}")


def _jwks_keys(fake: FakeFal) -> list[Ed25519PublicKey]:
    with _https(fake) as http:
        jwks = http.get(fake.jwks_url).json()
    keys = []
    for entry in jwks["keys"]:
        assert entry["kty"] == "OKP" and entry["crv"] == "Ed25519"
        x = entry["x"]
        assert "=" not in x
        keys.append(Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "==")))
    return keys


def _verifies(keys: list[Ed25519PublicKey], headers: dict[str, str], body: bytes) -> bool:
    h = {k.lower(): v for k, v in headers.items()}
    message = "\n".join(
        [
            h["x-fal-webhook-request-id"],
            h["x-fal-webhook-user-id"],
            h["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    for key in keys:
        try:
            key.verify(bytes.fromhex(h["x-fal-webhook-signature"]), message)
            return True
        except InvalidSignature:
            continue
    return False


# ------------------------------------------------------------------------------------ queue
def test_env_points_fal_client_at_the_fake(fake, fal):
    assert fake.queue_url_format == fal.client.QUEUE_URL_FORMAT
    assert fake.host.startswith("127.0.0.1:")


def test_lifecycle_status_result_and_recorded_request(fake, fal, client, receiver):
    # The run lasts long enough for a poll to land in it: at 0.12 s, one slow status call on
    # a loaded CI box stepped over it (seen in CI on PostgreSQL + Redis).
    fake.plan_outcomes(Outcome.success(queue_time=0.12, inference_time=0.6))
    args = {"prompt": "a red fox in snow", "resolution": "720p", "duration": 5}
    handle = client.submit(APP, args, webhook_url=receiver.url)

    # fal puts the request URLs under owner/alias only (the endpoint path is dropped)
    assert handle.status_url == (
        f"https://{fake.host}/fal-ai/pika/requests/{handle.request_id}/status"
    )
    seen = _poll(fal, handle)
    kinds = [type(s).__name__ for s in seen]
    assert kinds[0] == "Queued" and "InProgress" in kinds and kinds[-1] == "Completed"
    assert kinds == sorted(kinds, key=["Queued", "InProgress", "Completed"].index)
    assert isinstance(seen[0].position, int)
    in_progress = next(s for s in seen if isinstance(s, fal.InProgress))
    assert in_progress.logs and {"message", "level", "timestamp"} <= in_progress.logs[0].keys()
    done = seen[-1]
    assert done.error is None and done.metrics["inference_time"] > 0

    result = handle.get()
    video = result["video"]
    assert video["url"] == f"{fake.base_url}/files/{handle.request_id}.mp4"
    assert video["content_type"] == "video/mp4" and video["file_size"] > 1000

    submit = fake.submits()[-1]
    assert submit.json == args
    assert submit.param("fal_webhook") == receiver.url
    assert submit.header("user-agent") == "fal-client/1.0.3 (python)"
    assert submit.header("authorization") == "Key fake-key-id:fake-key-secret"
    assert submit.path == "/" + APP and submit.request_id == handle.request_id
    statuses = fake.recorded("status", request_id=handle.request_id)
    assert statuses and statuses[0].param("logs") == "true"
    assert fake.get_request(handle.request_id)["arguments"] == args


def test_get_handle_and_both_url_shapes(fake, fal, client):
    handle = client.submit(APP, {"prompt": "shapes"})
    rebuilt = fal.SyncClient().get_handle(APP, handle.request_id)
    assert rebuilt.status_url == handle.status_url  # module-level shape == server's shape
    assert isinstance(rebuilt.status(), fal.Queued | fal.InProgress)
    assert fake.wait_completed(handle.request_id)
    assert isinstance(rebuilt.status(), fal.Completed)
    assert fal.status(APP, handle.request_id).metrics  # module-level helper too

    headers = {"Authorization": "Key x"}
    with _https(fake) as http:
        full = f"{fake.base_url}/{APP}/requests/{handle.request_id}"
        assert http.get(full + "/status", headers=headers, params={"logs": 1}).status_code == 200
        assert http.get(full, headers=headers).json()["video"]["url"].endswith(".mp4")
        wrong_app = f"{fake.base_url}/fal-ai/other/requests/{handle.request_id}"
        assert http.get(wrong_app, headers=headers).status_code == 404
        assert http.get(f"{fake.base_url}/fal-ai/pika/requests/nope/status", headers=headers)\
            .status_code == 404  # fmt: skip


def test_result_before_completion_is_400(fake, client):
    fake.plan_outcomes(Outcome.stuck_in_queue())
    handle = client.submit(APP, {"prompt": "wait"})
    with _https(fake) as http:
        response = http.get(handle.response_url, headers={"Authorization": "Key x"})
    assert response.status_code == 400 and "detail" in response.json()
    assert fake.state_of(handle.request_id) == "IN_QUEUE"
    fake.complete_now(handle.request_id)
    assert handle.get()["video"]["url"]


def test_auth_required(fake):
    with _https(fake) as http:
        assert http.post(f"{fake.base_url}/{APP}", json={"prompt": "x"}).status_code == 401
        bad = http.post(f"{fake.base_url}/{APP}", json={}, headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
    assert [r.status for r in fake.submits()] == [401, 401]


def test_queue_position_counts_down(fake, client):
    # Long enough queue times that a busy CI machine still sees the first positions intact.
    fake.plan_outcomes(*[Outcome.success(queue_time=4.0, inference_time=0.05)] * 3)
    handles = [client.submit(APP, {"prompt": f"q{i}"}) for i in range(3)]
    first = [h.status().position for h in handles]
    assert first[2] >= 2 and first[2] >= first[1] >= first[0]
    time.sleep(2.5)
    later = handles[2].status()
    assert later.position < first[2]


def test_validation_and_content_policy_errors_surface(fake, fal, client):
    handle = client.submit(APP, {"prompt": "please fail-422"})
    done = _poll(fal, handle)[-1]
    assert done.error == "Invalid status code: 422"
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 422
    assert info.value.message == [
        {"loc": ["body", "prompt"], "msg": "Input should be a valid prompt", "type": "value_error"}
    ]

    fake.plan_outcomes(Outcome.content_policy())
    handle = client.submit(APP, {"prompt": "anything"})
    assert fake.wait_completed(handle.request_id)
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 422
    assert info.value.message[0]["type"] == "content_policy_violation"


def test_infra_error_malformed_and_non_json_outcomes(fake, fal, client):
    fake.plan_outcomes(
        Outcome.infra_error("request_timeout"), Outcome.malformed(), Outcome.non_json()
    )
    timeout, malformed, non_json = (client.submit(APP, {"prompt": str(i)}) for i in range(3))
    done = _poll(fal, timeout)[-1]
    assert done.error_type == "request_timeout" and done.error == "Request timed out"
    with pytest.raises(fal.FalClientHTTPError) as info:
        timeout.get()
    assert info.value.status_code == 504 and info.value.error_type == "request_timeout"
    assert info.value.response_headers["x-fal-error-type"] == "request_timeout"

    assert malformed.get() == {"video": {}}
    with pytest.raises(json.JSONDecodeError):
        non_json.get()


def test_cancel_before_and_after_completion(fake, fal, client):
    fake.plan_outcomes(Outcome.stuck_in_queue())
    handle = client.submit(APP, {"prompt": "cancel me"})
    handle.cancel()  # 202 CANCELLATION_REQUESTED
    assert fake.recorded("cancel")[-1].status == 202
    done = handle.status()
    assert isinstance(done, fal.Completed) and "cancel" in done.error.lower()

    handle = client.submit(APP, {"prompt": "too late"})
    assert fake.wait_completed(handle.request_id)
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.cancel()
    assert info.value.status_code == 400
    assert info.value.response.json() == {"status": "ALREADY_COMPLETED"}
    assert handle.get()["video"]["url"]  # finishes normally


def test_cancel_in_progress_can_be_ignored(fake, fal, client, monkeypatch):
    monkeypatch.setattr(fake, "cancel_stops_in_progress", False)
    fake.plan_outcomes(Outcome.success(queue_time=0.0, inference_time=0.2))
    handle = client.submit(APP, {"prompt": "race"})
    time.sleep(0.02)
    handle.cancel()
    assert handle.get()["video"]["url"]


def test_submit_errors_and_client_internal_retries(fake, fal, client, monkeypatch):
    # Promptreel's fal backend turns the client's own retries off; this test documents the
    # library's default behaviour, so it puts the default back for its duration.
    monkeypatch.setattr(fal.client, "MAX_ATTEMPTS", 10)
    # fal-style 503 (x-fal-request-id present): fal_client surfaces it at once, one attempt
    fake.fail_next_submits(1, status=503, error_type="runner_scheduling_failure")
    with pytest.raises(fal.FalClientHTTPError) as info:
        client.submit(APP, {"prompt": "x"})
    assert info.value.status_code == 503
    assert info.value.error_type == "runner_scheduling_failure"
    assert isinstance(info.value.message, str)
    assert len(fake.submits()) == 1

    # nginx-looking 503 without x-fal-request-id: fal_client retries it by itself
    fake.reset()
    fake.fail_next_submits(2, status=503, mode="ingress")
    handle = client.submit(APP, {"prompt": "x"})
    assert [r.status for r in fake.submits()] == [503, 503, 200]
    assert handle.request_id == fake.submits()[-1].request_id

    # 429 (and 408/409) are retried too, whatever the body
    fake.reset()
    fake.fail_next_submits(1, status=429, error_type="rate_limited")
    client.submit(APP, {"prompt": "x"})
    assert [r.status for r in fake.submits()] == [429, 200]

    # a dropped connection is an httpx transport error: retried
    fake.reset()
    fake.fail_next_submits(1, mode="disconnect")
    client.submit(APP, {"prompt": "x"})
    assert [r.status for r in fake.submits()] == [0, 200]


def test_transient_error_rate_answers_a_share_of_queue_calls_as_fal_would(
    fake, fal, client, monkeypatch
):
    handle = client.submit(APP, {"prompt": "x"})
    monkeypatch.setattr(fake, "_chaos_random", random.Random(7))
    monkeypatch.setattr(fake, "transient_error_rate", 0.3)
    answers = []
    with _https(fake) as http:
        for _ in range(100):
            try:
                answers.append(http.get(handle.status_url, headers={"Authorization": "Key k:s"}))
            except httpx.TransportError:
                answers.append(None)  # the dropped connection
    failed = [a for a in answers if a is None or a.status_code not in (200, 202)]
    # Seeded: the same share every run, counted by kind; each failure is one of fal's kinds.
    assert 15 < len(failed) < 45
    assert sum(fake.chaos_counts.values()) == len(failed)
    assert set(fake.chaos_counts) <= {
        "status 503 fal", "status 500 fal", "status 429 fal", "status 502 ingress",
        "status 503 ingress", "status 504 ingress", "status disconnect",
    }  # fmt: skip
    for answer in filter(None, failed):
        if answer.status_code in (502, 503, 504) and "nginx" in answer.text:
            assert "x-fal-request-id" not in answer.headers  # fal_client retries these
        else:
            assert answer.headers["x-fal-request-id"] == handle.request_id

    # The real client sees them as fal's errors (or transport errors), never as answers.
    monkeypatch.setattr(fake, "transient_error_rate", 1.0)
    monkeypatch.setattr(
        fake, "transient_errors", (TransientError(503, "fal", "runner_disconnected"),)
    )
    with pytest.raises(fal.FalClientHTTPError) as info:
        client.submit(APP, {"prompt": "y"})
    assert info.value.status_code == 503 and info.value.error_type == "runner_disconnected"
    assert fake.submits()[-1].request_id is None  # nothing was queued


def test_ambiguous_submit_queues_the_job_but_loses_the_answer(fake, monkeypatch):
    monkeypatch.setattr(fake, "ambiguous_submit_rate", 1.0)
    before = set(fake.request_ids())
    with _https(fake) as http, pytest.raises(httpx.TransportError):
        http.post(
            f"{fake.base_url}/{APP}", json={"prompt": "x"}, headers={"Authorization": "Key k:s"}
        )
    (queued,) = set(fake.request_ids()) - before
    assert fake.wait_completed(queued)  # it runs (and fal bills it) all the same
    assert fake.chaos_counts["submit accepted, answer lost"] == 1
    assert fake.submits()[-1].status == 0 and fake.submits()[-1].request_id == queued


def test_webhook_drop_and_duplicate_rates(fake, client, receiver, monkeypatch):
    monkeypatch.setattr(fake, "webhook_drop_rate", 1.0)
    dropped = client.submit(APP, {"prompt": "drop"}, webhook_url=receiver.url)
    assert fake.wait_completed(dropped.request_id)
    time.sleep(0.1)
    assert receiver.hits == [] and fake.chaos_counts["webhook dropped"] == 1

    monkeypatch.setattr(fake, "webhook_drop_rate", 0.0)
    monkeypatch.setattr(fake, "webhook_duplicate_rate", 1.0)
    twice = client.submit(APP, {"prompt": "dup"}, webhook_url=receiver.url)
    hits = receiver.wait(2)
    assert [json.loads(body)["request_id"] for _, body in hits] == [twice.request_id] * 2
    assert hits[0][1] == hits[1][1]
    assert [d.copy for d in fake.wait_for_webhooks(2)] == [1, 2]
    assert fake.chaos_counts["webhook duplicated"] == 1


def test_status_failure_injection(fake, fal, client):
    handle = client.submit(APP, {"prompt": "x"})
    fake.fail_next_status(1, status=500, error_type="internal_error")
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.status()
    assert info.value.status_code == 500 and info.value.error_type == "internal_error"
    assert handle.status() is not None  # next poll works


# ------------------------------------------------------------------------------------ webhooks
def test_success_webhook_is_signed_with_published_key(fake, fal, client, receiver):
    handle = client.submit(APP, {"prompt": "hook"}, webhook_url=receiver.url)
    ((headers, body),) = receiver.wait(1)
    payload = json.loads(body)
    assert payload["request_id"] == handle.request_id
    assert payload["gateway_request_id"] and payload["status"] == "OK"
    assert payload["payload"]["video"]["url"].endswith(f"{handle.request_id}.mp4")
    assert headers["X-Fal-Webhook-Request-Id"] == handle.request_id
    assert headers["X-Fal-Webhook-User-Id"] == fake.user_id
    assert abs(int(headers["X-Fal-Webhook-Timestamp"]) - time.time()) < 5
    assert _verifies(_jwks_keys(fake), headers, body)
    assert not _verifies(_jwks_keys(fake), headers, body + b" ")
    deliveries = fake.wait_for_webhooks(1)
    assert deliveries[0].status_code == 200 and deliveries[0].url == receiver.url


def test_error_webhook_bodies(fake, client, receiver):
    fake.plan_outcomes(Outcome.validation_error(), Outcome.non_json())
    first = client.submit(APP, {"prompt": "a"}, webhook_url=receiver.url)
    second = client.submit(APP, {"prompt": "b"}, webhook_url=receiver.url)
    bodies = {json.loads(b)["request_id"]: json.loads(b) for _, b in receiver.wait(2)}
    error = bodies[first.request_id]
    assert error["status"] == "ERROR" and error["error"] == "Invalid status code: 422"
    assert error["payload"]["detail"][0]["loc"] == ["body", "prompt"]
    garbage = bodies[second.request_id]
    assert garbage["payload"] is None and garbage["payload_error"]


def test_dropped_and_duplicated_webhooks(fake, client, receiver, monkeypatch):
    fake.drop_next_webhooks(1)
    dropped = client.submit(APP, {"prompt": "drop"}, webhook_url=receiver.url)
    assert fake.wait_completed(dropped.request_id)
    time.sleep(0.1)
    assert receiver.hits == [] and fake.webhook_deliveries == []

    monkeypatch.setattr(fake, "webhook_duplicates", 3)
    twice = client.submit(APP, {"prompt": "dup"}, webhook_url=receiver.url)
    hits = receiver.wait(3)
    assert len(hits) == 3
    assert {json.loads(b)["request_id"] for _, b in hits} == {twice.request_id}
    assert len({b for _, b in hits}) == 1


def test_late_webhook_and_retry(fake, client, receiver, monkeypatch):
    monkeypatch.setattr(fake, "webhook_delay_s", 0.3)
    handle = client.submit(APP, {"prompt": "late"}, webhook_url=receiver.url)
    assert fake.wait_completed(handle.request_id)
    completed_at = time.monotonic()
    assert receiver.hits == []
    receiver.wait(1)
    assert time.monotonic() - completed_at > 0.2

    monkeypatch.setattr(fake, "webhook_delay_s", 0.0)
    monkeypatch.setattr(fake, "webhook_retries", 1)
    monkeypatch.setattr(fake, "webhook_retry_delay_s", 0.05)
    receiver.answer = 500
    client.submit(APP, {"prompt": "retry"}, webhook_url=receiver.url)
    receiver.wait(3)
    deliveries = fake.wait_for_webhooks(3)
    assert [d.status_code for d in deliveries[1:]] == [500, 500]
    assert [d.attempt for d in deliveries[1:]] == [1, 2]


def test_forged_stale_and_rotated_keys(fake, client, receiver, monkeypatch):
    monkeypatch.setattr(fake, "webhook_sign_with_unpublished_key", True)
    client.submit(APP, {"prompt": "forged"}, webhook_url=receiver.url)
    headers, body = receiver.wait(1)[0]
    assert not _verifies(_jwks_keys(fake), headers, body)

    monkeypatch.setattr(fake, "webhook_sign_with_unpublished_key", False)
    monkeypatch.setattr(fake, "webhook_timestamp_offset_s", -3600)
    client.submit(APP, {"prompt": "stale"}, webhook_url=receiver.url)
    headers, body = receiver.wait(2)[1]
    assert _verifies(_jwks_keys(fake), headers, body)  # signature fine ...
    assert not verify_webhook(headers, body, fake.jwks())  # ... but outside +-300 s

    monkeypatch.setattr(fake, "webhook_timestamp_offset_s", 0)
    old_keys = _jwks_keys(fake)
    fake.rotate_keys()
    new_keys = _jwks_keys(fake)
    assert len(new_keys) == 1 and new_keys[0].public_bytes_raw() != old_keys[0].public_bytes_raw()
    client.submit(APP, {"prompt": "rotated"}, webhook_url=receiver.url)
    headers, body = receiver.wait(3)[2]
    assert _verifies(new_keys, headers, body) and not _verifies(old_keys, headers, body)
    assert verify_webhook(headers, body, fake.jwks())


def test_webhooks_only_go_to_loopback(fake, client):
    handle = client.submit(APP, {"prompt": "x"}, webhook_url="https://example.com/hook")
    (delivery,) = fake.wait_for_webhooks(1)
    assert delivery.request_id == handle.request_id
    assert delivery.status_code is None and delivery.error.startswith("refused")


# ------------------------------------------------------------------------------------ retention
def test_result_retention_expiry_is_404(fake, fal, client, monkeypatch):
    monkeypatch.setattr(fake, "result_retention_s", 0.1)
    handle = client.submit(APP, {"prompt": "expire"})
    assert fake.wait_completed(handle.request_id)
    time.sleep(0.15)
    assert isinstance(handle.status(), fal.Completed)
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 404

    monkeypatch.setattr(fake, "status_retention_s", 0.1)
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.status()
    assert info.value.status_code == 404


def test_without_stored_payloads_a_large_result_is_kept_six_minutes(fake, fal, client):
    big = Outcome.success(result_body={"video": {"url": "https://x/v.mp4"}, "pad": "x" * 20_000})
    fake.plan_outcomes(big, big)
    kept = client.submit(APP, {"prompt": "stored"})
    private = client.submit(APP, {"prompt": "private"}, headers={"X-Fal-Store-IO": "0"})
    for handle in (kept, private):
        assert fake.wait_completed(handle.request_id)
    with fake._lock:  # as if seven minutes had passed
        for handle in (kept, private):
            fake._reqs[handle.request_id].completed_mono -= 420
    assert kept.get()["pad"]
    with pytest.raises(fal.FalClientHTTPError) as info:
        private.get()
    assert info.value.status_code == 404


def test_media_lifetime_header_expires_the_output_file(fake, client):
    lifetime = json.dumps({"expiration_duration_seconds": 0})
    handle = client.submit(
        APP, {"prompt": "short-lived"}, headers={"X-Fal-Object-Lifecycle-Preference": lifetime}
    )
    url = handle.get()["video"]["url"]
    with _https(fake) as http:
        assert http.get(url).status_code == 404
    url = client.submit(APP, {"prompt": "default"}).get()["video"]["url"]
    with _https(fake) as http:
        assert http.get(url).status_code == 200


# ------------------------------------------------------------------------------------ files
def test_video_downloads_opens_with_pyav_and_range(fake, client):
    handle = client.submit(APP, {"prompt": "download"})
    url = handle.get()["video"]["url"]
    with _https(fake) as http:
        response = http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        assert int(response.headers["content-length"]) == len(response.content)
        with av.open(io.BytesIO(response.content)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.width, stream.height) == (320, 180)
            assert sum(1 for _ in container.decode(stream)) == 24

        part = http.get(url, headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == response.content[:100]
        assert part.headers["content-range"] == f"bytes 0-99/{len(response.content)}"
        tail = http.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == response.content[-10:]
        bad = http.get(url, headers={"Range": f"bytes={len(response.content)}-"})
        assert bad.status_code == 416
        head = http.head(url)
        assert head.status_code == 200 and head.headers["content-length"] == str(
            len(response.content)
        )


def test_file_knobs(fake, client):
    fake.plan_outcomes(
        Outcome.bad_file("html"),
        Outcome.bad_file("huge", file_size=3_000_000),
        Outcome.success(bytes_per_s=100_000),
        Outcome.bad_file("missing"),
        Outcome.success(video=(64, 36, 0.5, 12)),
    )
    handles = [client.submit(APP, {"prompt": str(i)}) for i in range(5)]
    html, huge, slow, missing, small = (h.get()["video"] for h in handles)
    with _https(fake) as http:
        page = http.get(html["url"])
        assert page.headers["content-type"].startswith("text/html")
        with http.stream("GET", huge["url"]) as response:
            assert response.headers["content-length"] == "3000000" == str(huge["file_size"])
            assert sum(len(chunk) for chunk in response.iter_bytes()) == 3_000_000
        began = time.monotonic()
        body = http.get(slow["url"]).content
        assert len(body) > 20_000 and time.monotonic() - began > 0.15
        assert http.get(missing["url"]).status_code == 404
        clip = http.get(small["url"]).content
        with av.open(io.BytesIO(clip)) as container:
            assert container.streams.video[0].width == 64


def test_custom_files_and_jwks_served(fake):
    url = fake.add_file("input.png", b"\x89PNG fake", content_type="image/png")
    with _https(fake) as http:
        response = http.get(url)
        assert response.content == b"\x89PNG fake"
        assert response.headers["content-type"] == "image/png"
        assert fake.jwks_url.startswith("https://127.0.0.1:")
        assert http.get(fake.jwks_url).json() == fake.jwks()


# ------------------------------------------------------------------------------------ load
def test_many_concurrent_requests(fake, fal):
    clients = [fal.SyncClient() for _ in range(4)]
    handles: list = []
    lock = threading.Lock()

    def work(c) -> None:
        for i in range(25):
            h = c.submit(APP, {"prompt": f"load {i}"})
            with lock:
                handles.append(h)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(handles) == 100
    deadline = time.monotonic() + 5
    pending = list(handles)
    while pending and time.monotonic() < deadline:
        pending = [h for h in pending if not isinstance(h.status(), fal.Completed)]
        time.sleep(0.02)
    assert not pending
    for c in clients:
        c._client.close()


# ------------------------------------------------------------------------------------ env setup
def test_configure_after_fal_client_was_imported(fal, monkeypatch):
    # fal_client is already imported here: configure patches QUEUE_URL_FORMAT (no reload, so
    # FalClientHTTPError and friends keep their identity) and resets the module-level client.
    error_class = fal.FalClientHTTPError
    with FakeFal(queue_time=0, inference_time=0.01) as other:
        configure_fal_client_env(other, key="other-key", monkeypatch=monkeypatch)
        handle = fal.submit(APP, {"prompt": "elsewhere"})
        assert handle.status_url.startswith(other.base_url)
        assert other.submits()[0].header("authorization") == "Key other-key"
        other.fail_next_status(1, status=503)
        with pytest.raises(error_class):
            handle.status()


def test_child_process_env(fake):
    import os
    import subprocess
    import sys

    code = (
        "import fal_client\n"
        f"h = fal_client.submit({APP!r}, {{'prompt': 'child'}})\n"
        "print(h.request_id)\n"
    )
    env = {**os.environ, **fake.env()}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in fake.request_ids()


def test_in_process_webhook_sender_and_status_stream(fake, client, monkeypatch):
    got = []
    monkeypatch.setattr(fake, "webhook_sender", lambda url, headers, body: got.append(body) or 204)
    handle = client.submit(APP, {"prompt": "sse"}, webhook_url="https://app.test/hooks/fal")
    url = handle.status_url + "/stream"
    with (
        fake.http_client() as http,
        http.stream("GET", url, headers={"Authorization": "Key x"}) as r,
    ):
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert events[-1]["status"] == "COMPLETED" and events[0]["status"] != "COMPLETED"
    (delivery,) = fake.wait_for_webhooks(1)
    assert delivery.status_code == 204 and got == [delivery.body]


# ------------------------------------------------------------------------------------ uploads
PNG = b"\x89PNG\r\n\x1a\n" + b"fake image bytes " * 64


def _download(fake: FakeFal, url: str) -> httpx.Response:
    with _https(fake) as http:
        return http.get(url)


def test_cdn_upload_as_fal_client_speaks_it(fake, client):
    url = client.upload(PNG, "image/png", file_name="cat.png")

    assert url.startswith(f"{fake.base_url}/files/uploads/") and url.endswith("/cat.png")
    token_call, upload_call = fake.recorded("upload_token") + fake.recorded("upload")
    assert token_call.param("storage_type") == "fal-cdn-v3"
    assert token_call.header("authorization") == "Key fake-key-id:fake-key-secret"
    assert upload_call.body == PNG and upload_call.header("content-type") == "image/png"
    assert upload_call.header("x-fal-file-name") == "cat.png"
    assert upload_call.header("authorization").startswith("Bearer ")
    (uploaded,) = fake.uploads
    assert (uploaded.url, uploaded.data, uploaded.via) == (url, PNG, "cdn")
    served = _download(fake, url)
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"

    client.upload(b"second", "text/plain")
    assert len(fake.recorded("upload_token")) == 1, "the CDN token is reused until it expires"


def test_cdn_failure_falls_back_to_storage_upload(fake, client):
    fake.fail_next("upload", 1, status=500, error_type=None, detail="CDN is down")
    url = client.upload(PNG, "image/png")

    assert [r.status for r in fake.recorded("upload")] == [500]
    (initiate,) = fake.recorded("upload_initiate")
    assert initiate.param("storage_type") == "gcs"
    assert initiate.json == {"file_name": "upload.bin", "content_type": "image/png"}
    (put,) = fake.recorded("upload_put")
    assert put.method == "PUT" and put.body == PNG and put.status == 200
    assert [(u.via, u.url) for u in fake.uploads] == [("storage", url)]
    assert _download(fake, url).content == PNG


def test_upload_failures_surface_as_fal_client_raises_them(fake, fal, client):
    fake.fail_next("upload", 1, status=503)
    fake.fail_next("upload_initiate", 1, status=503)
    with pytest.raises(fal.FalClientHTTPError) as info:
        client.upload(PNG, "image/png")
    assert info.value.status_code == 503

    # The token call is made outside fal-client's retry and fallback: httpx's own error.
    fresh = fal.SyncClient()
    fake.fail_next("upload_token", 1, status=502)
    with pytest.raises(httpx.HTTPStatusError):
        fresh.upload(PNG, "image/png")
    fresh._client.close()
    assert fake.uploads == []


def test_upload_auth(fake):
    with _https(fake) as http:
        token_url = f"{fake.rest_url}/storage/auth/token?storage_type=fal-cdn-v3"
        assert http.post(token_url).status_code == 401
        assert http.post(token_url, headers={"Authorization": "Key k"}).status_code == 200
        initiate = f"{fake.rest_url}/storage/upload/initiate?storage_type=gcs"
        assert http.post(initiate, json={"content_type": "image/png"}).status_code == 401
        wrong = http.post(
            f"{fake.cdn_url}/files/upload", content=PNG, headers={"Authorization": "Bearer no"}
        )
        assert wrong.status_code == 401
        assert http.put(f"{fake.base_url}/storage/put/unknown", content=PNG).status_code == 403
    assert fake.uploads == []


# ------------------------------------------------------------------------------ input fetching
def test_fetch_inputs_reads_every_input_url(fake, client, monkeypatch):
    monkeypatch.setattr(fake, "fetch_inputs", True)
    url = client.upload(PNG, "image/png")
    other = fake.add_file("other.mp4")
    handle = client.submit(
        "fal-ai/pika/v2.2/pikascenes",
        {"prompt": "x", "image_urls": [url, other], "note_url": "data:image/png;base64,AA"},
    )
    assert fake.wait_completed(handle.request_id)
    first, second = fake.input_fetches
    assert (first.request_id, first.field, first.url, first.status) == (
        handle.request_id,
        "image_urls[0]",
        url,
        200,
    )
    assert first.sha256 == hashlib.sha256(PNG).hexdigest() and first.size == len(PNG)
    assert first.content_type == "image/png"
    assert second.field == "image_urls[1]" and second.ok
    assert handle.status().error is None


def test_unreadable_input_fails_like_fal(fake, fal, client, monkeypatch):
    monkeypatch.setattr(fake, "fetch_inputs", True)
    handle = client.submit(APP, {"prompt": "x", "image_url": fake.file_url("nothing-here.png")})
    assert fake.wait_completed(handle.request_id)
    (fetch,) = fake.input_fetches
    assert fetch.status == 404 and not fetch.ok
    with pytest.raises(fal.FalClientHTTPError) as info:
        handle.get()
    assert info.value.status_code == 422
    assert info.value.message[0]["loc"] == ["body", "image_url"]
    assert info.value.message[0]["type"] == "file_download_error"


def test_fetch_inputs_never_leaves_loopback(fake, client, monkeypatch):
    monkeypatch.setattr(fake, "fetch_inputs", True)
    handle = client.submit(APP, {"prompt": "x", "image_url": "https://example.com/a.png"})
    (fetch,) = fake.input_fetches
    assert fetch.status is None and fetch.error.startswith("refused")
    assert fake.wait_completed(handle.request_id)
    assert handle.status().error is None, "not fetched is not a download failure"


def test_fetch_inputs_is_off_by_default(fake, client):
    handle = client.submit(APP, {"prompt": "x", "image_url": fake.file_url("nothing-here.png")})
    assert fake.wait_completed(handle.request_id)
    assert fake.input_fetches == [] and handle.status().error is None


def test_submit_answer_carries_the_queue_position(fake):
    fake.plan_outcomes(Outcome.success(queue_time=30, queue_position=4))
    with _https(fake) as http:
        answer = http.post(
            f"{fake.base_url}/{APP}",
            json={"prompt": "x"},
            headers={"Authorization": "Key k"},
        ).json()
    assert answer["status"] == "IN_QUEUE" and answer["queue_position"] == 4
    fake.complete_now(answer["request_id"])


def test_a_lost_submit_answer_queues_the_job_and_the_clients_retry_a_second(
    fake, fal, client, monkeypatch
):
    """mode="lost": fal got the POST (a job that runs and is billed), the answer never came.
    fal-client's own retry then queues a second paid job: why Promptreel turns it off."""
    monkeypatch.setattr(fal.client, "MAX_ATTEMPTS", 10)
    before = set(fake.request_ids())
    fake.fail_next_submits(1, mode="lost")
    handle = client.submit(APP, {"prompt": "x"})
    queued = [rid for rid in fake.request_ids() if rid not in before]
    assert len(queued) == 2 and handle.request_id == queued[1]
    assert [r.status for r in fake.submits()] == [0, 200]
    assert fake.wait_completed(queued[0]), "the lost one runs like any other"

    monkeypatch.setattr(fal.client, "MAX_ATTEMPTS", 1)
    fake.fail_next_submits(1, mode="lost")
    with pytest.raises(httpx.TransportError):
        client.submit(APP, {"prompt": "x"})
    assert len([rid for rid in fake.request_ids() if rid not in before]) == 3


def test_a_fal_side_retry_answers_under_its_gateway_id(fake, fal, client):
    fake.plan_outcomes(Outcome.success(fal_retries=1))
    handle = client.submit(APP, {"prompt": "x"})
    assert fake.get_request(handle.request_id)["gateway_request_id"] == handle.request_id
    assert fake.wait_completed(handle.request_id)
    gateway = fake.get_request(handle.request_id)["gateway_request_id"]
    assert gateway != handle.request_id
    with _https(fake) as http:
        auth = {"Authorization": "Key k"}
        status = http.get(handle.status_url, headers=auth).json()
        assert status["gateway_request_id"] == gateway
        assert http.get(handle.response_url, headers=auth).status_code == 404
        retried = handle.response_url.replace(handle.request_id, gateway)
        answer = http.get(retried, headers=auth)
        assert answer.status_code == 200 and answer.json()["video"]["url"]
