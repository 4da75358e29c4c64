from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records (ledger, audit log): staff look, nobody edits or deletes."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
