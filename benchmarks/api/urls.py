"""The product's URLs plus /bench/ping: a trivial DRF view, the benchmark's baseline.

It is an `restapi.views.ApiView` like the API's views, so it runs the same authentication (API
key lookup), permissions (IsAuthenticated + HasScope) and throttle (the Redis rate limit) and
adds the same RateLimit headers; only the view body is trivial.
"""

from django.urls import include, path
from rest_framework.response import Response

from api.models import Scope
from restapi.views import ApiView


class Ping(ApiView):
    required_scopes = {"GET": Scope.GENERATIONS_READ}

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("bench/ping", Ping.as_view(), name="bench_ping"),
    path("", include("config.urls")),
]
