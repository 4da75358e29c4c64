from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Pieces every app shares: the refusal error, the audit log, client addresses, the guarded
    outbound fetch and the read-only admin. It imports no other app of ours
    (docs/architecture.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
