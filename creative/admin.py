from django.contrib import admin

from .models import Batch, PromptTemplate, Recipe
from .templating import template_preview


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    """Staff curate the shared templates here: edit, reorder, hide (active off). Users' own
    templates are listed too, read by staff, never edited here."""

    list_display = ["title", "kind", "endpoint_id", "active", "position", "owner"]
    list_filter = ["active", "kind", ("owner", admin.EmptyFieldListFilter)]
    list_editable = ["active", "position"]
    search_fields = ["title", "slug", "text"]
    readonly_fields = ["preview", "created_at", "updated_at"]
    fields = [
        "title", "slug", "kind", "description", "text", "slots", "preview", "endpoint_id",
        "settings", "active", "position", "owner", "created_at", "updated_at",
    ]  # fmt: skip

    @admin.display(description="Preview of the final prompt")
    def preview(self, template):
        return template_preview(template) if template.pk else "-"

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.shared)


class RecipeInline(admin.TabularInline):
    model = Recipe
    extra = 0
    can_delete = False
    readonly_fields = ["generation", "position", "label", "template_slug", "slots", "kept"]
    fields = readonly_fields


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "kind", "title", "total_credits", "created_at"]
    list_filter = ["kind"]
    search_fields = ["id", "user__email", "title"]
    inlines = [RecipeInline]
    readonly_fields = [f.name for f in Batch._meta.fields]

    def has_add_permission(self, request):
        return False
