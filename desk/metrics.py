"""Prometheus metrics at /metrics, for `Authorization: Bearer <METRICS_TOKEN>` only: the figures
each process counts (core.metrics) and those read from the database when scraped."""

import hmac
import os

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django_q.brokers import get_broker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from api.models import WebhookDelivery
from generation.models import Generation, State


class DatabaseCollector:
    """Figures read from the database and the broker at scrape time."""

    def collect(self):
        generations = GaugeMetricFamily(
            "promptreel_generations", "Generations by state", labels=["state"]
        )
        counts = dict(Generation.objects.order_by().values_list("state").annotate(n=Count("pk")))
        for state in State.values:
            generations.add_metric([state], counts.get(state, 0))
        yield generations

        deliveries = GaugeMetricFamily(
            "promptreel_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        counts = dict(
            WebhookDelivery.objects.order_by().values_list("status").annotate(n=Count("pk"))
        )
        for status in WebhookDelivery.Status.values:
            deliveries.add_metric([status], counts.get(status, 0))
        yield deliveries

        queued = GaugeMetricFamily("promptreel_tasks_queued", "Tasks waiting in the broker")
        queued.add_metric([], get_broker().queue_size())
        yield queued


def authorized(request) -> bool:
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@never_cache
def metrics(request):
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    if not authorized(request):
        response = HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        process_figures = generate_latest(registry)
    else:
        process_figures = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    return HttpResponse(
        process_figures + generate_latest(database), content_type=CONTENT_TYPE_LATEST
    )
