from django.urls import path

from . import views

urlpatterns = [
    path("policy/content/", views.policy_content, name="policy_content"),
    path("policy/acceptable-use/", views.policy_acceptable_use, name="policy_acceptable_use"),
    path("moderation/report/<uuid:pk>/", views.report, name="moderation_report"),
    path(
        "moderation/media/<uuid:pk>/<str:kind>/",
        views.moderator_media,
        name="moderation_media",
    ),
]
