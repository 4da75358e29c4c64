import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Django imports the URLconf (every app's views, DRF, the schema) on a process's first
# request: 1.3 s on an idle dev box, 3.75 s on a busy one. Done here, while the worker boots,
# it is never paid by a request: it was the fal webhook outlier of benchmarks/inflight --lone.
get_resolver().url_patterns  # noqa: B018 - the import is the point
