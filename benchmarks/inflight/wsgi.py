"""The product's WSGI application with the benchmark's query counter (gunicorn target)."""

import os

from benchmarks.inflight import counting

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
counting.install(os.environ["BENCH_COUNT_DIR"], "web")

from config.wsgi import application  # noqa: E402

__all__ = ["application"]
