from django.urls import path

from . import creative, views

urlpatterns = [
    path("", views.home, name="home"),
    path("generate/", views.generate, name="generate"),
    path("generate/price/", views.generate_price, name="generate_price"),
    path("generate/draft/<str:token>/", views.draft_image, name="generate_draft"),
    path("gallery/", views.gallery, name="gallery"),
    path("settings/", views.account_settings, name="account_settings"),
    # Creative tools (issue 18): studio/creative.py.
    path("generate/hints/", creative.hints, name="generate_hints"),
    path("generate/variations/price/", creative.variations_price, name="variations_price"),
    path("batches/<uuid:pk>/", creative.batch_detail, name="batch_detail"),
    path("batches/<uuid:pk>/keep/<uuid:generation_id>/", creative.keep, name="batch_keep"),
    path("storyboard/", creative.storyboard_page, name="storyboard"),
    path("g/<uuid:pk>/", views.detail, name="generation_detail"),
    path("g/<uuid:pk>/status/", views.status, name="generation_status"),
    path("g/<uuid:pk>/delete/", views.delete, name="generation_delete"),
    path("g/<uuid:pk>/cancel/", views.cancel, name="generation_cancel"),
    # Under billing/ since it spends credits; the name predates the studio app.
    path("billing/hd/<uuid:pk>/", views.render_hd, name="billing_render_hd"),
    path("media/s/<str:token>/", views.media_signed, name="media_signed"),
    path(
        "g/<uuid:pk>/<str:kind>/",
        views.media_file,
        name="generation_media",
    ),
]
