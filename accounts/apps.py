from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
    # allauth's app (email addresses) is "Accounts" in the admin too; two sections of one name.
    verbose_name = "Users"
