from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"
    # Picked up by core.schedules.ensure_schedules after each migrate.
    schedules_module = "generation.schedules"

    def ready(self):
        from . import provenance  # noqa: F401 - registers its system check
