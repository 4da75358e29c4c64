from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CreativeConfig(AppConfig):
    """Tools that raise the share of renders worth keeping: prompt templates, built-in
    constraints, prompt lint, variations, storyboards and reuse of an identical clip
    (docs/architecture.md, "Creative tools"). It imports only generation and core; workflows
    and the interfaces call it."""

    name = "creative"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .templating import templates_sync

        post_migrate.connect(templates_sync, sender=self, dispatch_uid="creative-templates")
