from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from billing.views import stripe_webhook
from core.metrics import metrics
from generation.fal_webhooks import fal_webhook
from generation.health import healthz

urlpatterns = [
    path("admin/login/", admin_login, name="admin_login"),  # before admin's own login view
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include("api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/fal/", fal_webhook, name="fal_webhook"),
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    path("billing/", include("billing.urls")),
    path("", include("moderation.urls")),
    path("", include("generation.urls")),
]
