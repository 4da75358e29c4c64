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
