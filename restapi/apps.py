from django.apps import AppConfig


class RestApiConfig(AppConfig):
    """The versioned REST API (DRF): authentication by API key, problem+json errors,
    idempotent creates, rate limits. The models it serves live in api, generation and billing."""

    name = "restapi"
    schedules_module = "restapi.schedules"
    default_auto_field = "django.db.models.BigAutoField"
