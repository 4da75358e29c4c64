from django.apps import AppConfig


class StudioConfig(AppConfig):
    """The website where people make videos: generate, watch, gallery, HD, media links."""

    name = "studio"
    default_auto_field = "django.db.models.BigAutoField"
