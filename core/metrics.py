"""Prometheus figures counted in the process; desk.metrics serves them at /metrics with the
figures read from the database.

Two kinds of figure:
- counted in the process (HTTP requests and their latency, by core.observability's middleware):
  with PROMETHEUS_MULTIPROC_DIR set (gunicorn, several processes) prometheus-client writes them
  to files there and /metrics adds up every process's (its multiprocess mode);
- read from the database when scraped (generations by state, webhook deliveries by status,
  tasks waiting in the broker): the same whichever process answers, so nothing to aggregate.
"""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "promptreel_http_requests_total", "HTTP requests answered", ["method", "status"]
)
HTTP_SECONDS = Histogram(
    "promptreel_http_request_seconds",
    "Time to answer an HTTP request",
    ["method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Counted where the thing happens (issue 15 item 3): a move or a ledger entry once its own
# transaction is done, a provider call or a webhook attempt when it returns.
GENERATION_MOVES = Counter(
    "promptreel_generation_moves_total",
    "Generations moved into a state (workflows.lifecycle.generation_move)",
    ["state"],
)
GENERATION_STAGE_SECONDS = Histogram(
    "promptreel_generation_stage_seconds",
    "Time generations spent in each stage (generation.stages), observed when they end",
    ["stage"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
PROVIDER_CALLS = Counter(
    "promptreel_provider_calls_total",
    "Calls to the video provider by backend, endpoint, call and outcome (ok or the error code)",
    ["backend", "endpoint", "call", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "promptreel_webhook_attempts_total",
    "Attempts to deliver an API client's webhook: delivered, retry (will try again), gave_up",
    ["outcome"],
)
LEDGER_ENTRIES = Counter(
    "promptreel_ledger_entries_total", "Ledger entries written, by kind", ["kind"]
)
LEDGER_CREDITS = Counter(
    "promptreel_ledger_credits_total",
    "Credits moved by ledger entries, by kind (absolute value; a capture moves none)",
    ["kind"],
)


def ledger_counted(*, kind: str, amount: int) -> None:
    LEDGER_ENTRIES.labels(kind=kind).inc()
    LEDGER_CREDITS.labels(kind=kind).inc(abs(amount))
