"""gunicorn target: the product's WSGI application with benchmarks.api.settings."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.api.settings"

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
