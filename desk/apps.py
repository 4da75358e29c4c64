from django.apps import AppConfig


class DeskConfig(AppConfig):
    """The moderator desk and the staff dashboard: Django admin pages for held prompts,
    reports, take-downs, standings, the audit log and the figures of the service. An interface
    on top of workflows and moderation; its only models are the dashboard's hourly figures and
    the state of staff alerts (desk.models)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "desk"
    verbose_name = "Moderator desk"
    schedules_module = "desk.schedules"
