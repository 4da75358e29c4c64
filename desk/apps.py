from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The moderator desk: Django admin pages for held prompts, reports, take-downs, standings
    and the audit log. An interface on top of workflows and moderation; it owns no models."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "desk"
    verbose_name = "Moderator desk"
