from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from billing.services import account_for, credits_purchase

from .models import User


def _verified_user(*, email: str, password: str, staff: bool = False) -> tuple[User, bool]:
    """An active account with this password and a verified address (made or reset)."""
    user, created = User.objects.get_or_create(email=email.lower())
    user.set_password(password)
    user.is_active = True
    if staff:
        user.is_staff = user.is_superuser = True
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return user, created


@transaction.atomic
def user_ensure_demo(*, email: str, password: str) -> tuple[User, bool]:
    """Create (or reset the password of) a verified demo account; say whether it is new."""
    user, created = _verified_user(email=email, password=password)
    if settings.DEMO_CREDITS > 0:
        # Once per demo user (keyed), so that it can render in HD without Stripe.
        credits_purchase(
            account=account_for(user),
            credits=settings.DEMO_CREDITS,
            key=f"demo:{user.pk}",
            reason="Demo account starting credits",
        )
    return user, created


@transaction.atomic
def user_ensure_demo_staff(*, email: str, password: str) -> tuple[User, bool]:
    """A verified superuser in the moderators group (or its password reset), so that the
    admin, the moderator queues and the staff dashboard can be tried offline: an account
    made with createsuperuser must first confirm its address by email. For ./dev.sh run."""
    user, created = _verified_user(email=email, password=password, staff=True)
    moderators = Group.objects.filter(name="moderators").first()  # made by a migration
    if moderators is not None:
        user.groups.add(moderators)
    return user, created


def user_notifications_set(*, user: User, notify_by_email: bool) -> None:
    """The creator's email setting: whether a video's end (ready, failed) is emailed."""
    User.objects.filter(pk=user.pk).update(notify_by_email=notify_by_email)
    user.notify_by_email = notify_by_email
