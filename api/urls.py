from django.urls import path

from . import site_views

# The website's API keys page; the REST API itself is restapi.urls.
urlpatterns = [
    path("keys/", site_views.api_keys, name="api_keys"),
    path("keys/<int:pk>/revoke", site_views.api_key_revoke, name="api_key_revoke"),
]
