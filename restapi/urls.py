from django.urls import path, re_path

from . import creative_views, views

urlpatterns = [
    path("v1/generations", views.GenerationListCreate.as_view(), name="api_generations"),
    path("v1/generations/<uuid:pk>", views.GenerationDetail.as_view(), name="api_generation"),
    path(
        "v1/generations/<uuid:pk>/cancel",
        views.GenerationCancel.as_view(),
        name="api_generation_cancel",
    ),
    path(
        "v1/generations/<uuid:pk>/events",
        views.GenerationEvents.as_view(),
        name="api_generation_events",
    ),
    path(
        "v1/generations/<uuid:pk>/webhooks",
        views.GenerationWebhooks.as_view(),
        name="api_generation_webhooks",
    ),
    path(
        "v1/generations/<uuid:pk>/webhooks/<str:message_id>/redeliver",
        views.WebhookRedeliver.as_view(),
        name="api_webhook_redeliver",
    ),
    path("v1/webhooks/test", views.WebhookTest.as_view(), name="api_webhook_test"),
    path("v1/models", views.Models.as_view(), name="api_models"),
    path("v1/account", views.Account.as_view(), name="api_account"),
    path("v1/estimate", views.Estimate.as_view(), name="api_estimate"),
    # Creative tools (issue 18): restapi/creative_views.py.
    path("v1/templates", creative_views.Templates.as_view(), name="api_templates"),
    path("v1/batches/<uuid:pk>", creative_views.BatchDetail.as_view(), name="api_batch"),
    path("v1/storyboards", creative_views.Storyboards.as_view(), name="api_storyboards"),
    path("schema/", views.SchemaView.as_view(), name="api_schema"),
    path("docs/", views.DocsView.as_view(url_name="api_schema"), name="api_docs"),
    # Last: any other path under /api/ (a typo, an id that is not a UUID) is a problem+json
    # 404 like the API's own, not the site's HTML page.
    re_path(r"^", views.UnknownPath.as_view(), name="api_unknown_path"),
]
