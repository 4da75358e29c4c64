from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """Where a generation moves: the lifecycle (every state change with its credits, webhook
    outbox and audit in one transaction), create and cancel, the provider pipeline, the tracker
    and the reaper. It may import every domain app; none of them imports it
    (docs/architecture.md)."""

    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"
    schedules_module = "workflows.schedules"
