from django.contrib import admin
from django.urls import include, path

from generation.fal_webhooks import fal_webhook
from generation.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    path("webhooks/fal/", fal_webhook, name="fal_webhook"),
    path("", include("generation.urls")),
]
