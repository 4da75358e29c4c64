"""`python -m benchmarks.chaos.proc <manage.py args>`: manage.py whose outgoing webhooks may
reach the benchmark's loopback receiver.

The product sends API clients' webhooks only to public https addresses (core.safe_fetch). The
benchmark's receiver stands in for a client's public endpoint on 127.0.0.1: as in
tests/api/test_webhooks.py, only its own port is let through, and TLS is verified against the
fake's certificate. Nothing else of the product is changed.
"""

import ipaddress
import os
import sys


def _loopback_is_public(ip) -> None:
    from core.safe_fetch import check_ip

    if not ipaddress.ip_address(ip).is_loopback:
        check_ip(ip)


def _let_webhooks_reach_the_receiver(port: int, cert_path: str) -> None:
    from api import webhooks

    options = {"ip_check": _loopback_is_public, "allowed_ports": {port}, "verify": cert_path}
    deliver = webhooks.webhook_deliver

    def webhook_deliver(*, delivery_id, fetch_options=None):
        return deliver(delivery_id=delivery_id, fetch_options=fetch_options or options)

    # api.tasks and deliver_due both call it through the module.
    webhooks.webhook_deliver = webhook_deliver


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    _let_webhooks_reach_the_receiver(
        int(os.environ["CHAOS_RECEIVER_PORT"]), os.environ["CHAOS_RECEIVER_CERT"]
    )
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])
