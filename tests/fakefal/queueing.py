"""fal's queue: submit, status (and its SSE stream), result and cancel, and the simulation in
time behind them (IN_QUEUE -> IN_PROGRESS -> COMPLETED, driven by a heap and a scheduler thread).

Everything here that touches ``_reqs``/``_heap``/``_queued`` runs under ``FakeFal._lock``.
"""

from __future__ import annotations

import heapq
import json
import math
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .records import APP_NAMESPACES, Outcome, _Req
from .transport import _json_resp, _Resp, _truthy
from .video import make_mp4


class QueueSimulation:
    """The queue calls and request clock of ``FakeFal``.

    Uses ``FakeFal``'s ``_reqs``, ``_heap``/``_seq``, ``_queued`` and ``_planned`` under
    ``_lock``/``_cond``; completion is ``Runner._finalize``, webhook sends ``Webhooks._deliver``.
    """

    def plan_outcomes(self, *outcomes: Outcome) -> None:
        """Queue outcomes for the next submits, first-in first-out (beats every other rule)."""
        with self._lock:
            self._planned.extend(outcomes)

    def complete_now(self, request_id: str, outcome: Outcome | None = None) -> None:
        """Finish a request immediately (optionally with a different outcome)."""
        video = (outcome.video or self.video) if outcome else None
        data = make_mp4(*video) if video else None
        with self._cond:
            rec = self._reqs[request_id]
            if rec.completed:
                return
            now = time.monotonic()
            if outcome is not None:
                rec.outcome = outcome
                rec.video_data = data
            if rec.t_start > now:
                rec.t_start = now
            rec.t_done = now
            self._finalize(rec, now)

    def start_now(self, request_id: str) -> None:
        """Move a queued request to IN_PROGRESS now (its inference time starts now)."""
        with self._cond:
            rec = self._reqs[request_id]
            now = time.monotonic()
            if rec.completed or rec.t_start <= now:
                return
            if math.isfinite(rec.t_start):
                inference = rec.t_done - rec.t_start
            else:
                inference = rec.outcome.inference_time
                if inference is None:
                    inference = self._timing(self.inference_time, rec.app, rec.arguments)
            rec.t_start = now
            rec.t_done = now + inference
            self._mark_started(rec)
            if math.isfinite(rec.t_done):
                self._push(rec.t_done, "complete", rec.rid)

    def request_ids(self) -> list[str]:
        with self._lock:
            return list(self._reqs)

    def get_request(self, request_id: str) -> dict[str, Any]:
        """Snapshot of one simulated request (app, arguments, webhook_url, state, outcome...)."""
        with self._lock:
            rec = self._reqs[request_id]
            now = time.monotonic()
            state = self._state(rec, now)
            return {
                "request_id": rec.rid,
                "gateway_request_id": rec.gateway_id,
                "app": rec.app,
                "arguments": rec.arguments,
                "webhook_url": rec.webhook_url,
                "headers": rec.headers,
                "state": state,
                "cancelled": rec.cancelled,
                "outcome": rec.outcome,
                "error": rec.status_error,
                "error_type": rec.status_error_type,
                "urls": dict(rec.urls),
            }

    def state_of(self, request_id: str) -> str:
        return self.get_request(request_id)["state"]

    def wait_completed(self, request_id: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state_of(request_id) == "COMPLETED":
                return True
            time.sleep(0.01)
        return False

    def completion_times(self) -> dict[str, float]:
        """Wall-clock time (time.time()) at which each completed request completed."""
        with self._lock:
            return {rid: rec.completed_wall for rid, rec in self._reqs.items() if rec.completed}

    def counts(self) -> dict[str, int]:
        """How many simulated requests are in each state right now."""
        result = {"IN_QUEUE": 0, "IN_PROGRESS": 0, "COMPLETED": 0}
        with self._lock:
            now = time.monotonic()
            for rec in self._reqs.values():
                result[self._state(rec, now)] += 1
        return result

    def _push(self, when: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), kind, payload))
        if self._heap[0][0] == when:  # new earliest event: wake the scheduler
            self._cond.notify()

    def _mark_started(self, rec: _Req) -> None:
        if not rec.started:
            rec.started = True
            self._queued -= 1

    def _state(self, rec: _Req, now: float) -> str:
        if rec.completed:
            return "COMPLETED"
        if now >= rec.t_done:
            self._finalize(rec, now)
            return "COMPLETED"
        if now >= rec.t_start:
            self._mark_started(rec)
            return "IN_PROGRESS"
        return "IN_QUEUE"

    def _position(self, rec: _Req, now: float) -> int:
        if not math.isfinite(rec.t_start):
            return rec.initial_pos
        span = rec.t_start - rec.t_submit
        if span <= 0:
            return 0
        return max(0, math.ceil(rec.initial_pos * (rec.t_start - now) / span))

    def _timing(self, value: Any, app: str, arguments: dict) -> float:
        if callable(value):
            return float(value(app, arguments))
        if isinstance(value, Mapping):
            return float(value.get(app, value.get("*", 0.0)))
        return float(value)

    def _status_body(self, rec: _Req, state: str, now: float, logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"status": state, "request_id": rec.rid, **rec.urls}
        if state == "IN_QUEUE":
            body["queue_position"] = self._position(rec, now)
            body["logs"] = None
        elif state == "IN_PROGRESS":
            body["logs"] = self._logs(rec, now) if logs else None
        else:
            body["logs"] = self._logs(rec, now) if logs else None
            body["metrics"] = rec.metrics
            if rec.status_error is not None:
                body["error"] = rec.status_error
            if rec.status_error_type is not None:
                body["error_type"] = rec.status_error_type
            if rec.gateway_id != rec.rid:
                body["gateway_request_id"] = rec.gateway_id  # UNCONFIRMED: fal may omit it
        return body

    def _logs(self, rec: _Req, now: float) -> list[dict[str, Any]]:
        def entry(message: str, at_mono: float) -> dict[str, Any]:
            wall = rec.wall_submit + (min(at_mono, now) - rec.t_submit)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall))
            return {
                "message": message,
                "level": "INFO",
                "source": "user",
                "timestamp": f"{stamp}.{int((wall % 1) * 1e6):06d}Z",
            }

        if rec.outcome.logs is not None:
            return [entry(message, rec.t_start) for message in rec.outcome.logs]
        if not rec.started or (rec.cancelled and not rec.metrics):
            return []
        out = [entry("Starting video generation", rec.t_start)]
        if rec.completed:
            out.append(entry("Generation finished", rec.completed_mono))
        elif math.isfinite(rec.t_done) and rec.t_done > rec.t_start:
            pct = int(100 * (now - rec.t_start) / (rec.t_done - rec.t_start))
            out.append(entry(f"Generating: {min(99, pct)}%", now))
        return out

    def _submit(
        self,
        segments: list[str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[str | None, _Resp]:
        app = "/".join(segments)
        if self.known_apps is not None and app not in self.known_apps:
            return None, _json_resp(
                404,
                {"detail": f"Application '{app}' not found"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        try:
            arguments = json.loads(body) if body else {}
        except ValueError:
            return None, _json_resp(
                422,
                {"detail": "Request body is not valid JSON"},
                {"x-fal-request-id": str(uuid.uuid4())},
            )
        if not isinstance(arguments, dict):
            arguments = {"_body": arguments}
        webhook_url = (query.get("fal_webhook") or [None])[0] or None

        rid = str(uuid.uuid4())
        outcome = self._fetch_inputs(rid, arguments) if self.fetch_inputs else None
        if outcome is None:
            outcome = self._choose_outcome(app, arguments)
        queue_time = outcome.queue_time
        if queue_time is None:
            queue_time = self._timing(self.queue_time, app, arguments)
        inference = outcome.inference_time
        if inference is None:
            inference = self._timing(self.inference_time, app, arguments)
        video_data = make_mp4(*outcome.video) if outcome.video else None

        head = 3 if segments[0] in APP_NAMESPACES else 2
        short = "/".join(segments[:head])
        rec = _Req()
        rec.rid = rid
        # fal: "mostly the same" as request_id; another after a fal-side retry (Runner).
        rec.gateway_id = rid
        rec.app = app
        rec.prefix = short
        rec.arguments = arguments
        rec.webhook_url = webhook_url
        rec.outcome = outcome
        rec.headers = headers
        rec.video_data = video_data
        base = f"{self.base_url}/{short if self.request_url_style == 'short' else app}"
        base += f"/requests/{rec.rid}"
        rec.urls = {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        now = time.monotonic()
        rec.t_submit = now
        rec.wall_submit = time.time()
        rec.t_start = now + max(0.0, queue_time)
        rec.t_done = rec.t_start + max(0.0, inference)
        with self._cond:
            rec.initial_pos = (
                outcome.queue_position if outcome.queue_position is not None else (self._queued)
            )
            self._queued += 1
            self._reqs[rec.rid] = rec
            if math.isfinite(rec.t_start):
                self._push(rec.t_start, "start", rec.rid)
            if math.isfinite(rec.t_done):
                self._push(rec.t_done, "complete", rec.rid)
            position = self._position(rec, now)
        answer = {
            "status": "IN_QUEUE",
            "request_id": rec.rid,
            **rec.urls,
            "queue_position": position,
            "gateway_request_id": rec.gateway_id,
        }
        return rec.rid, _json_resp(200, answer, {"x-fal-request-id": rec.rid})

    def _lookup(self, rid: str, prefix: str, now: float) -> _Req | None:
        """The record if it exists, is addressed by its own app and is not expired (locked)."""
        rec = self._reqs.get(rid)
        if rec is None:
            return None
        if self.strict_app_match and prefix not in (rec.prefix, rec.app):
            return None
        if (
            self.status_retention_s is not None
            and self._state(rec, now) == "COMPLETED"
            and now - rec.completed_mono > self.status_retention_s
        ):
            return None
        return rec

    def _not_found(self, rid: str) -> _Resp:
        return _json_resp(404, {"detail": f"Request {rid} not found"}, {"x-fal-request-id": rid})

    def _status(self, rid: str, prefix: str, query: dict[str, list[str]]) -> _Resp:
        logs = _truthy((query.get("logs") or ["0"])[0])
        with self._lock:
            now = time.monotonic()
            rec = self._lookup(rid, prefix, now)
            if rec is None:
                return self._not_found(rid)
            state = self._state(rec, now)
            body = self._status_body(rec, state, now, logs)
        return _json_resp(200 if state == "COMPLETED" else 202, body, {"x-fal-request-id": rid})

    def _status_stream(self, rid: str, prefix: str, query: dict[str, list[str]]) -> _Resp:
        logs = _truthy((query.get("logs") or ["0"])[0])
        with self._lock:
            if self._lookup(rid, prefix, time.monotonic()) is None:
                return self._not_found(rid)

        def stream(wfile: Any) -> None:
            deadline = time.monotonic() + 120.0
            while not self._stopping.is_set() and time.monotonic() < deadline:
                with self._lock:
                    now = time.monotonic()
                    rec = self._reqs[rid]
                    state = self._state(rec, now)
                    body = self._status_body(rec, state, now, logs)
                wfile.write(f"data: {json.dumps(body)}\n\n".encode())
                if state == "COMPLETED":
                    return
                self._stopping.wait(0.1)

        resp = _Resp(
            200,
            b"",
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-fal-request-id": rid,
            },
        )
        resp.stream = stream
        return resp

    def _result(self, rid: str, prefix: str) -> _Resp:
        with self._lock:
            now = time.monotonic()
            retried = self._by_gateway.get(rid)
            rec = self._lookup(retried or rid, prefix, now)
            if rec is None or (retried is None and rec.gateway_id != rec.rid):
                # A request fal retried on its side keeps its result under the last run's
                # gateway id only (fal-ai/fal#703; UNCONFIRMED how fal really serves it).
                return self._not_found(rid)
            state = self._state(rec, now)
            if state != "COMPLETED":
                return _json_resp(
                    400, {"detail": "Request is still in progress"}, {"x-fal-request-id": rid}
                )
            if now - rec.completed_mono > self._result_retention(rec):
                return self._not_found(rid)
            resp = _Resp(rec.result_status, rec.result_body, dict(rec.result_headers))
        return resp

    def _result_retention(self, rec: _Req) -> float:
        """fal keeps a result 1 h (6 min when 10 KB or more) unless payloads are stored; with
        `X-Fal-Store-IO: 0` nothing is stored, so the short limits apply whatever the knob.
        UNCONFIRMED: fal publishes no figure for the queue's result under Store-IO 0; these are
        a guess the product must tolerate (generation/backends/fal.py privacy_headers)."""
        if rec.headers.get("x-fal-store-io") != "0":
            return self.result_retention_s
        short = 360.0 if len(rec.result_body) >= 10_000 else 3600.0
        return min(self.result_retention_s, short)

    def _cancel(self, rid: str, prefix: str) -> _Resp:
        headers = {"x-fal-request-id": rid}
        with self._cond:
            now = time.monotonic()
            rec = self._lookup(rid, prefix, now)
            if rec is None:
                return _json_resp(
                    404, {"status": "NOT_FOUND", "detail": "Request not found"}, headers
                )
            state = self._state(rec, now)
            if state == "COMPLETED":
                return _json_resp(400, {"status": "ALREADY_COMPLETED"}, headers)
            if state == "IN_QUEUE" or self.cancel_stops_in_progress:
                rec.cancelled = True
                self._finalize(rec, now)
        return _json_resp(202, {"status": "CANCELLATION_REQUESTED"}, headers)

    def _scheduler(self) -> None:
        while not self._stopping.is_set():
            due: list[tuple[str, Any]] = []
            with self._cond:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, kind, payload = heapq.heappop(self._heap)
                    if kind == "start":
                        rec = self._reqs.get(payload)
                        if rec is not None and rec.t_start <= now:
                            self._mark_started(rec)
                    elif kind == "complete":
                        rec = self._reqs.get(payload)
                        if rec is not None and not rec.completed and rec.t_done <= now:
                            self._finalize(rec, now)
                    else:
                        due.append((kind, payload))
                if not due:
                    wait = 0.5
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0][0] - now))
                    self._cond.wait(wait)
                    continue
            pool = self._pool
            for _, payload in due:
                if pool is None or self._stopping.is_set():
                    break
                try:
                    pool.submit(self._deliver, *payload)
                except RuntimeError:  # pool shut down while stopping
                    break
