"""`python -m benchmarks.inflight.counted ROLE <manage.py args>`: manage.py with a query counter."""

import os
import sys

from benchmarks.inflight import counting

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    role, *args = sys.argv[1:]
    counting.install(os.environ["BENCH_COUNT_DIR"], role)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *args])
