from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"
    # core.schedules.ensure_schedules writes these to django-q's table after migrate.
    schedules_module = "billing.schedules"
