"""allauth adapter: audit staff sign-ins and lockouts.

The Django admin signs in through allauth too (accounts.views.admin_login), so its lockout is
allauth's login_failed rate limit (ACCOUNT_RATE_LIMITS, counted in the shared cache), and the
audit log shows who got into the admin, failed attempts on staff accounts and each lockout.
"""

from allauth.account.adapter import DefaultAccountAdapter
from django.core.cache import cache
from django.core.exceptions import ValidationError

from core.audit import audit_record
from core.models import AuditAction

from .models import User

# One audit entry per locked account per lockout window, however many attempts hit the lock.
LOCKOUT_AUDIT_SECONDS = 300


class AccountAdapter(DefaultAccountAdapter):
    def pre_authenticate(self, request, **credentials):
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            email = _email(credentials)
            if cache.add(f"audit-login-locked:{email}", 1, LOCKOUT_AUDIT_SECONDS):
                audit_record(
                    actor=None,
                    action=AuditAction.LOGIN_LOCKED,
                    target=_user(email),
                    reason=f"Too many failed sign-ins for {email}.",
                    request=request,
                )
            raise

    def authentication_failed(self, request, **credentials):
        super().authentication_failed(request, **credentials)
        user = _user(_email(credentials))
        if user is not None and user.is_staff:
            audit_record(
                actor=None,
                action=AuditAction.STAFF_LOGIN_FAILED,
                target=user,
                reason="Wrong password.",
                request=request,
            )

    def login(self, request, user):
        super().login(request, user)
        if user.is_staff:
            audit_record(actor=user, action=AuditAction.STAFF_LOGIN, target=user, request=request)


def _email(credentials: dict) -> str:
    return str(credentials.get("email") or credentials.get("username") or "").strip().lower()


def _user(email: str) -> User | None:
    return User.objects.filter(email__iexact=email).first() if email else None
