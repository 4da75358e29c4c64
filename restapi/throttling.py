from django.conf import settings
from rest_framework.throttling import BaseThrottle

from api import ratelimit
from api.models import ApiKey
from core.net import client_ip

WINDOW_SECONDS = 60


class ApiRateThrottle(BaseThrottle):
    """Requests per minute per API key (or per signed-in user, or per IP when anonymous)."""

    def allow_request(self, request, view):
        if isinstance(getattr(request, "_auth", None), ApiKey):
            bucket, limit = f"key:{request._auth.pk}", settings.API_REQUESTS_PER_MINUTE
        elif getattr(request, "_user", None) is not None and request._user.is_authenticated:
            bucket, limit = f"user:{request._user.pk}", settings.API_REQUESTS_PER_MINUTE
        else:
            bucket, limit = (
                f"ip:{client_ip(request)}",
                settings.API_ANONYMOUS_REQUESTS_PER_MINUTE,
            )
        self.verdict = ratelimit.hit(bucket, limit=limit, window_seconds=WINDOW_SECONDS)
        request.rate_limit = self.verdict
        return self.verdict.allowed

    def wait(self):
        return self.verdict.reset_seconds
