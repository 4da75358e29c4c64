from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Public API"
    default_auto_field = "django.db.models.BigAutoField"
    schedules_module = "api.schedules"
