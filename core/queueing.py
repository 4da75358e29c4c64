"""Queue django-q2 tasks through one broker per process.

Without a `broker` argument, django-q2's async_task builds a new broker for every task: on
Redis a new client with a connection pool of its own, so a new TCP connection per task.
"""

from functools import cache

from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task


@cache
def _broker() -> Broker:
    # Shared by threads (redis-py's pool and the ORM are thread-safe); redis-py starts a fresh
    # pool in a forked child.
    return get_broker()


def enqueue(func: str, *args, **options) -> str:
    """async_task(func, *args, **options) through this process's broker."""
    return async_task(func, *args, broker=_broker(), **options)
