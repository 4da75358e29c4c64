from allauth.account.models import EmailAddress
from django.db import transaction

from .models import User


@transaction.atomic
def user_ensure_demo(*, email: str, password: str) -> tuple[User, bool]:
    """Create (or reset the password of) a verified demo account; say whether it is new."""
    user, created = User.objects.get_or_create(email=email.lower())
    user.set_password(password)
    user.is_active = True
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    return user, created
