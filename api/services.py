import hmac
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from moderation.services import user_is_suspended

from . import keys
from .models import ApiKey, Scope

LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyRefused(Exception):
    pass


@transaction.atomic
def apikey_create(
    *,
    user,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    monthly_credit_cap: int | None = None,
    request=None,
) -> tuple[ApiKey, str]:
    """Make a key; return the row and the raw key, which is shown once and never stored."""
    unknown = set(scopes) - set(Scope.values)
    if unknown or not scopes:
        raise ValueError(f"Scopes must be among {', '.join(Scope.values)}")
    raw = keys.new_key()
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=keys.lookup_prefix(raw),
        key_hash=keys.digest(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        monthly_credit_cap=monthly_credit_cap,
    )
    _audit(user, "api.key_create", api_key, request, after={"scopes": api_key.scopes})
    return api_key, raw


def apikey_revoke(*, api_key: ApiKey, request=None) -> bool:
    """Revoke for good; True if this call revoked it."""
    now = timezone.now()
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        actor = getattr(request, "user", None) or api_key.user
        _audit(actor, "api.key_revoke", api_key, request)
    return bool(revoked)


def _audit(actor, action: str, api_key: ApiKey, request, after=None) -> None:
    audit_record(actor=actor, action=action, target=api_key, request=request, after=after)


def apikey_authenticate(*, raw: str) -> ApiKey:
    """Find the active key for a raw key, or raise KeyRefused with the reason."""
    if not keys.well_formed(raw):
        raise KeyRefused("The API key is malformed: copy it again from your account page.")
    api_key = ApiKey.objects.select_related("user").filter(prefix=keys.lookup_prefix(raw)).first()
    if api_key is None or not hmac.compare_digest(api_key.key_hash, keys.digest(raw)):
        raise KeyRefused("The API key is not valid.")
    if api_key.revoked_at is not None:
        raise KeyRefused("The API key has been revoked.")
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        raise KeyRefused("The API key has expired.")
    if not api_key.user.is_active or user_is_suspended(api_key.user):
        raise KeyRefused("The account that owns this API key is suspended.")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # Coarse on purpose: one write a minute per key, not one per request.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key
