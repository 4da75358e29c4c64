from django.apps import AppConfig
from django.db.models.signals import post_migrate


class GenerationConfig(AppConfig):
    name = "generation"
    default_auto_field = "django.db.models.BigAutoField"
    schedules_module = "generation.schedules"

    def ready(self):
        from . import provenance  # noqa: F401 - registers its system check
        from .schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="generation-schedules")
