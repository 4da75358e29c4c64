from django.urls import path

from . import site_views

# The website's API keys page; the REST API itself is restapi.urls.
urlpatterns = [
    path("keys/", site_views.api_keys, name="api_keys"),
    path("keys/<int:pk>/revoke", site_views.api_key_revoke, name="api_key_revoke"),
    path("keys/webhooks/test", site_views.webhook_test, name="api_webhook_test_site"),
    path(
        "keys/webhooks/<int:pk>/redeliver",
        site_views.webhook_redeliver_view,
        name="api_webhook_redeliver_site",
    ),
]
