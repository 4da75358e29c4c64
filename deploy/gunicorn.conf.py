"""gunicorn settings for the web process: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Every value can be overridden from the environment (GUNICORN_CMD_ARGS or the variables below).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")  # behind the TLS proxy
# Requests are short (renders run in the workers): a few sync processes per core.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
# Uploads are capped (IMAGE_MAX_BYTES) and media go out as signed links or streamed ranges,
# so no request should take long; a stuck one is killed and logged.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM: finish requests in flight, then exit; systemd's TimeoutStopSec is longer.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
keepalive = 5
# Recycle workers now and then, so a slow leak never grows without bound.
max_requests = 2000
max_requests_jitter = 200
# Each worker imports the app itself: no client or connection made at import is ever shared
# between forked processes.
preload_app = False
# gunicorn takes the scheme from X-Forwarded-Proto of these peers. The same switch as Django's
# (TRUSTED_PROXY_COUNT): with no proxy configured, nobody's header is believed.
_proxied = int(os.environ.get("TRUSTED_PROXY_COUNT") or 0) > 0
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1" if _proxied else "")
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def child_exit(server, worker):
    # Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR): drop a dead worker's live gauges.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
