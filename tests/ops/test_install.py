"""A database set up by `migrate` alone is ready to run: no createcachetable step anywhere."""

import subprocess
import sys

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

from tests.support.processes import ROOT, process_env

CACHE_TABLE = "promptreel_cache"


@pytest.mark.slow
def test_migrate_alone_creates_the_database_cache_table(tmp_path):
    env = process_env()
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)  # the database cache, as without Redis in production
    env["SQLITE_PATH"] = str(tmp_path / "fresh.sqlite3")

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = manage("migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    used = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.core.cache import cache; cache.set('probe', 'kept', 60); "
        "print(cache.get('probe'))",
    )
    assert used.returncode == 0, used.stderr
    assert used.stdout.strip() == "kept"


@pytest.mark.django_db(transaction=True)
def test_migrate_recreates_a_missing_cache_table(settings):
    """A database first migrated with Redis as the cache gets the table when Redis goes."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_TABLE,
        }
    }
    if CACHE_TABLE not in connection.introspection.table_names():
        call_command("createcachetable", verbosity=0)  # the Redis run's test database
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {CACHE_TABLE}")
    assert CACHE_TABLE not in connection.introspection.table_names()

    call_command("migrate", "--noinput", verbosity=0)

    assert CACHE_TABLE in connection.introspection.table_names()
    caches["default"].set("probe", "kept", 60)
    assert caches["default"].get("probe") == "kept"
