import hmac
import logging
import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django_q.brokers import get_broker

log = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    broker = get_broker()
    if not broker.ping():
        raise RuntimeError("broker did not answer")
    broker.queue_size()  # the ORM broker's ping always succeeds; this touches its table


def _check_storage() -> None:
    default_storage.exists("healthz-probe")


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


def live_parts() -> dict[str, str]:
    """Which parts are real and which run on their offline defaults."""
    return {
        "database": connection.vendor,
        "broker": "redis" if settings.REDIS_URL else "orm",
        "storage": "s3" if settings.AWS_STORAGE_BUCKET_NAME else "filesystem",
        "video_backend": settings.VIDEO_BACKEND,
        "moderation": "rules+openai" if settings.OPENAI_API_KEY else "rules",
        "billing": "stripe" if settings.STRIPE_SECRET_KEY else "off",
    }


def may_see_details(request) -> bool:
    """Staff, or a monitor sending `Authorization: Bearer <HEALTHZ_TOKEN>`."""
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = settings.HEALTHZ_TOKEN
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@never_cache
def healthz(request):
    """200 "ok" or 503 "fail" for anyone (load balancers); the details only for staff or the
    token, since which parts run on offline defaults tells an attacker where to look."""
    results, healthy = {}, True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # any failure makes the check fail; say which and why
            log.warning("health check %s failed: %s", name, exc)
            results[name] = {"ok": False, "error": type(exc).__name__}
            healthy = False
        else:
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    status = 200 if healthy else 503
    if not may_see_details(request):
        return HttpResponse(
            "ok" if healthy else "fail", status=status, content_type="text/plain; charset=utf-8"
        )
    body = {"ok": healthy, "checks": results, "parts": live_parts()}
    return JsonResponse(body, status=status)
