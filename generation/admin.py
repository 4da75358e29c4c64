from django.contrib import admin

from core.admin_dates import BoundedDateHierarchyAdmin

from .models import Generation, GenerationInput


class InputInline(admin.TabularInline):
    model = GenerationInput
    extra = 0
    can_delete = False
    readonly_fields = ["position", "kind", "file", "content_type", "width", "height", "created_at"]


@admin.register(Generation)
class GenerationAdmin(BoundedDateHierarchyAdmin):
    list_display = [
        "id",
        "user",
        "state",
        "endpoint_id",
        "resolution",
        "duration",
        "credit_cost",
        "created_at",
    ]
    list_filter = ["state", "backend", "endpoint_id", "tier"]
    search_fields = ["id", "user__email", "prompt", "provider_request_id"]
    date_hierarchy = "created_at"
    inlines = [InputInline]
    # The pipeline owns every field: admins look, they do not edit state by hand.
    readonly_fields = [field.name for field in Generation._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # bulk delete would skip the per-row check below
        return actions

    def has_delete_permission(self, request, obj=None):
        # A running generation holds credits and a provider job: only ended ones may go.
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_terminal)
