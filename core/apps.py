from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    """Pieces every app shares: the refusal error, the audit log, client addresses, the guarded
    outbound fetch, the read-only admin and the periodic-job table. It imports no other app of
    ours (docs/architecture.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

    def ready(self):
        from .schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="core-schedules")
