from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_tables(*, using: str, **kwargs) -> None:
    """Create the database cache's table (CACHES without REDIS_URL) if it is missing.

    On every migrate, not in a migration: a database first migrated with Redis as the cache
    still gets its table when REDIS_URL is later removed. createcachetable skips tables that
    exist and caches that are not database caches.
    """
    call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    """Pieces every app shares: the refusal error, the audit log, client addresses, the guarded
    outbound fetch, the read-only admin and the periodic-job table. It imports no other app of
    ours (docs/architecture.md)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "core"

    def ready(self):
        from .schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="core-schedules")
        post_migrate.connect(create_cache_tables, sender=self, dispatch_uid="core-cache-tables")
