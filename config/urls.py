from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from billing.views import stripe_webhook
from desk.dashboard import dashboard
from desk.metrics import metrics
from generation.health import healthz
from workflows.fal_webhooks import fal_webhook

urlpatterns = [
    path("admin/login/", admin_login, name="admin_login"),  # before admin's own login view
    path("admin/dashboard/", dashboard, name="desk_dashboard"),  # staff only (admin_view)
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include("api.urls")),
    path("api/", include("restapi.urls")),  # last under /api/: it answers unknown paths
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/fal/", fal_webhook, name="fal_webhook"),
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    path("billing/", include("billing.urls")),
    path("", include("moderation.urls")),
    path("", include("studio.urls")),
]
