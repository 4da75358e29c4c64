"""Who is asking: the client's address, as far as our own proxies vouch for it.

Behind TRUSTED_PROXY_COUNT reverse proxies, each appends the address it saw to
X-Forwarded-For, so the client is the entry that many places from the right; anything further
left was written by the client and proves nothing. With no trusted proxy (the default) the header
is ignored and REMOTE_ADDR is the client. Rate limits, sign-in lockouts and the audit log all
read the address here, so they agree.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's IP address as a normalised string, or None (no request, or no valid one)."""
    if request is None:
        return None
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.headers.get("x-forwarded-for") if proxies > 0 else None
    if forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        candidate = hops[-min(proxies, len(hops))]
    else:
        candidate = request.META.get("REMOTE_ADDR", "")
    return _normalised(candidate)


def _normalised(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
