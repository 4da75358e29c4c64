"""The moderators' tools in Django admin (staff with the moderation.moderate permission).

Queues: held generations and reported outputs, with previews and bulk actions. History:
moderation cases, reports, take-downs, user standings and the append-only audit log.
"""

import csv
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from core.admin_dates import BoundedDateHierarchyAdmin

from . import services
from .models import (
    AuditEntry,
    HeldGeneration,
    ModerationCase,
    Report,
    ReportedGeneration,
    TakeDown,
    UserStanding,
)
from .policy import get_policy


class ModeratorOnly:
    """Visible to moderators only; nothing is added, edited or deleted by hand."""

    def has_module_permission(self, request):
        return services.is_moderator(request.user)

    def has_view_permission(self, request, obj=None):
        return services.is_moderator(request.user)

    def has_moderate_permission(self, request):
        return services.is_moderator(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionForm(forms.Form):
    category = forms.ChoiceField(required=False, label="Policy")
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), label="Note"
    )

    def __init__(self, *args, with_category=True, **kwargs):
        super().__init__(*args, **kwargs)
        if with_category:
            self.fields["category"].choices = [("", "— as flagged —"), *get_policy().choices()]
        else:
            del self.fields["category"]


def _confirm(modeladmin, request, queryset, *, action, title, with_category=True, help_text=""):
    """An intermediate page asking for a policy and a note; the cleaned data once confirmed."""
    if "confirm" in request.POST:
        form = ActionForm(request.POST, with_category=with_category)
        if form.is_valid():
            return form.cleaned_data, None
    else:
        form = ActionForm(with_category=with_category)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "help_text": help_text,
        "form": form,
        "action": action,
        "queryset": queryset,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return None, TemplateResponse(request, "moderation/admin/action_form.html", context)


def _media_url(generation, kind):
    return reverse("moderation_media", args=[generation.pk, kind])


def _preview(generation, *, width=220):
    parts = []
    if generation.output:
        poster = _media_url(generation, "poster") if generation.poster else ""
        parts.append(
            format_html(
                '<video controls preload="none" width="{}" poster="{}" src="{}"></video>',
                width,
                poster,
                _media_url(generation, "video"),
            )
        )
    if generation.inputs.exists():
        parts.append(
            format_html(
                '<a href="{0}" target="_blank"><img src="{0}" alt="input image" width="{1}"></a>',
                _media_url(generation, "input"),
                width // 2,
            )
        )
    if not parts:
        return "—"
    return format_html("<div>{}</div>", format_html("".join(["{}"] * len(parts)), *parts))


class _GenerationQueue(ModeratorOnly, BoundedDateHierarchyAdmin):
    list_select_related = ["user"]
    list_per_page = 25
    search_fields = ["id", "user__email", "prompt"]
    date_hierarchy = "created_at"

    @admin.display(description="Preview")
    def preview(self, obj):
        return _preview(obj)

    @admin.display(description="Prompt")
    def prompt_short(self, obj):
        return Truncator(obj.prompt).chars(160)

    @admin.display(description="Owner")
    def owner(self, obj):
        standing = UserStanding.objects.filter(user_id=obj.user_id).first()
        if standing and standing.is_suspended:
            return format_html("{} <strong>(suspended)</strong>", obj.user)
        if standing and standing.violations:
            return format_html("{} ({} violations)", obj.user, standing.violations)
        return str(obj.user)

    @admin.action(description="Suspend the owners of the selected", permissions=["moderate"])
    def suspend_owner(self, request, queryset):
        data, page = _confirm(
            self, request, queryset, action="suspend_owner", title="Suspend owners",
            with_category=False,
            help_text="Suspended users cannot generate or use API keys until unsuspended.",
        )  # fmt: skip
        if page:
            return page
        done = 0
        for user_id in set(queryset.values_list("user_id", flat=True)):
            user = queryset.model._meta.get_field("user").related_model.objects.get(pk=user_id)
            done += services.user_suspend(
                user=user, actor=request.user, reason=data["reason"], request=request
            )
        self.message_user(request, f"Suspended {done} user(s).", messages.SUCCESS)
        return None


@admin.register(HeldGeneration)
class HeldGenerationAdmin(_GenerationQueue):
    list_display = ["created_at", "preview", "prompt_short", "flagged", "owner", "credit_cost"]
    list_filter = [
        "moderation_case__category",
        "moderation_case__source",
        "endpoint_id",
    ]
    actions = ["approve", "reject", "suspend_owner"]
    ordering = ["created_at"]  # oldest first: a queue
    fields = [
        "preview",
        "flagged",
        "prompt",
        "user",
        "endpoint_id",
        "resolution",
        "duration",
        "credit_cost",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("moderation_case")

    @admin.display(description="Flagged for")
    def flagged(self, obj):
        case = getattr(obj, "moderation_case", None)
        if case is None:
            return "—"
        return format_html(
            "<strong>{}</strong><br><small>{} · {}</small>",
            case.title or case.category or "—",
            case.source,
            Truncator(case.detail).chars(200),
        )

    @admin.action(description="Approve: run the selected generations", permissions=["moderate"])
    def approve(self, request, queryset):
        done = sum(
            services.held_approve(generation=g, moderator=request.user, request=request)
            for g in queryset
        )
        self.message_user(request, f"Approved {done} generation(s); they are queued.")

    @admin.action(description="Reject: block and refund the selected", permissions=["moderate"])
    def reject(self, request, queryset):
        data, page = _confirm(
            self, request, queryset, action="reject", title="Reject held generations",
            help_text="The owner sees the policy's explanation; their credits are released.",
        )  # fmt: skip
        if page:
            return page
        done = sum(
            services.held_reject(
                generation=g,
                moderator=request.user,
                category=data.get("category", ""),
                note=data["reason"],
                request=request,
            )
            for g in queryset
        )
        self.message_user(request, f"Rejected {done} generation(s).")
        return None


@admin.register(ReportedGeneration)
class ReportedGenerationAdmin(_GenerationQueue):
    list_display = [
        "created_at",
        "preview",
        "prompt_short",
        "report_summary",
        "open_reports",
        "taken_down",
        "owner",
    ]
    list_filter = ["reports__reason", "state"]
    actions = ["take_down", "dismiss_reports", "suspend_owner"]
    fields = ["preview", "report_summary", "taken_down", "prompt", "user", "state", "created_at"]
    readonly_fields = fields

    @admin.display(description="Open reports", ordering="open_reports")
    def open_reports(self, obj):
        return obj.open_reports

    @admin.display(description="Reasons")
    def report_summary(self, obj):
        titles = dict(get_policy().choices())
        lines = [
            format_html(
                "<li>{}{}</li>",
                titles.get(r.reason, r.reason),
                f": {Truncator(r.details).chars(200)}" if r.details else "",
            )
            for r in obj.reports.filter(status=Report.Status.OPEN)
        ]
        return format_html("<ul>{}</ul>", format_html("".join(["{}"] * len(lines)), *lines))

    @admin.display(description="Taken down", boolean=True)
    def taken_down(self, obj):
        return services.output_is_taken_down(obj)

    @admin.action(description="Take down the selected outputs", permissions=["moderate"])
    def take_down(self, request, queryset):
        data, page = _confirm(
            self, request, queryset, action="take_down", title="Take outputs down",
            help_text="The files are no longer served to anyone but moderators; the reports "
            "are closed as actioned and the owner's violation count goes up.",
        )  # fmt: skip
        if page:
            return page
        done = sum(
            services.output_take_down(
                generation=g,
                moderator=request.user,
                category=data.get("category", "") or _top_reason(g),
                reason=data["reason"],
                request=request,
            )
            for g in queryset
        )
        self.message_user(request, f"Took down {done} output(s).")
        return None

    @admin.action(description="Dismiss the reports on the selected", permissions=["moderate"])
    def dismiss_reports(self, request, queryset):
        done = sum(
            services.reports_dismiss(generation=g, moderator=request.user, request=request)
            for g in queryset
        )
        self.message_user(request, f"Dismissed {done} report(s).")


def _top_reason(generation) -> str:
    reasons = list(
        generation.reports.filter(status=Report.Status.OPEN).values_list("reason", flat=True)
    )
    return max(set(reasons), key=reasons.count) if reasons else ""


@admin.register(ModerationCase)
class ModerationCaseAdmin(ModeratorOnly, BoundedDateHierarchyAdmin):
    list_display = ["created_at", "generation", "user", "status", "category", "source"]
    list_filter = ["status", "category", "source", "action"]
    search_fields = ["generation__id", "user__email", "detail", "prompt"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "generation"]
    readonly_fields = [f.name for f in ModerationCase._meta.fields]


@admin.register(Report)
class ReportAdmin(ModeratorOnly, BoundedDateHierarchyAdmin):
    list_display = ["created_at", "generation", "reporter", "reason", "times", "status"]
    list_filter = ["status", "reason"]
    search_fields = ["generation__id", "reporter__email", "details"]
    date_hierarchy = "created_at"
    list_select_related = ["reporter", "generation"]
    readonly_fields = [f.name for f in Report._meta.fields]


@admin.register(TakeDown)
class TakeDownAdmin(ModeratorOnly, admin.ModelAdmin):
    list_display = ["created_at", "generation", "category", "actor"]
    list_filter = ["category"]
    readonly_fields = [f.name for f in TakeDown._meta.fields]
    actions = ["restore"]

    @admin.action(description="Restore: serve the selected outputs again", permissions=["moderate"])
    def restore(self, request, queryset):
        done = sum(
            services.output_restore(
                generation=t.generation, moderator=request.user, request=request
            )
            for t in queryset.select_related("generation")
        )
        self.message_user(request, f"Restored {done} output(s).")


class SuspendedFilter(admin.SimpleListFilter):
    title = "suspended"
    parameter_name = "suspended"

    def lookups(self, request, model_admin):
        return [("yes", "Suspended"), ("no", "Not suspended")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(suspended_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(suspended_at__isnull=True)
        return queryset


@admin.register(UserStanding)
class UserStandingAdmin(ModeratorOnly, admin.ModelAdmin):
    list_display = [
        "user",
        "violations",
        "suspended_at",
        "suspended_reason",
        "flagged_at",
        "flag_reason",
    ]
    list_filter = [SuspendedFilter, ("flagged_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in UserStanding._meta.fields]
    actions = ["suspend", "unsuspend"]

    @admin.action(description="Suspend the selected users", permissions=["moderate"])
    def suspend(self, request, queryset):
        data, page = _confirm(
            self, request, queryset, action="suspend", title="Suspend users", with_category=False
        )
        if page:
            return page
        done = sum(
            services.user_suspend(
                user=s.user, actor=request.user, reason=data["reason"], request=request
            )
            for s in queryset.select_related("user")
        )
        self.message_user(request, f"Suspended {done} user(s).")
        return None

    @admin.action(description="Unsuspend the selected users", permissions=["moderate"])
    def unsuspend(self, request, queryset):
        done = sum(
            services.user_unsuspend(user=s.user, actor=request.user, request=request)
            for s in queryset.select_related("user")
        )
        self.message_user(request, f"Unsuspended {done} user(s).")


CSV_COLUMNS = [
    "created_at",
    "actor_repr",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "reason",
    "before",
    "after",
    "ip",
]


class _Echo:
    def write(self, value):
        return value


def _csv_safe(value) -> str:
    text = "" if value is None else str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ is read as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@admin.register(AuditEntry)
class AuditEntryAdmin(BoundedDateHierarchyAdmin):
    """Read-only for everyone: no add, no change, no delete, whatever the permissions say."""

    list_display = ["created_at", "actor_label", "action", "target_type", "target_repr", "ip"]
    list_filter = ["action", "target_type", ("actor", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["actor_repr", "target_repr", "target_id", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["target_type"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = ["export_selected"]
    change_list_template = "moderation/admin/audit_change_list.html"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Actor", ordering="actor_repr")
    def actor_label(self, obj):
        return obj.actor_repr or "system"

    def get_urls(self):
        return [
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_view),
                name="moderation_auditentry_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request):
        """The whole filtered changelist as CSV (same filters and search as the page)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        queryset = self.get_changelist_instance(request).get_queryset(request)
        return self._csv(queryset)

    @admin.action(description="Export the selected entries as CSV", permissions=["view"])
    def export_selected(self, request, queryset):
        return self._csv(queryset)

    def _csv(self, queryset):
        writer = csv.writer(_Echo())

        def rows():
            yield writer.writerow(CSV_COLUMNS)
            for entry in queryset.select_related("target_type").order_by("created_at", "id"):
                yield writer.writerow(
                    [
                        entry.created_at.isoformat(),
                        _csv_safe(entry.actor_repr or "system"),
                        entry.action,
                        entry.target_type.model if entry.target_type else "",
                        _csv_safe(entry.target_id),
                        _csv_safe(entry.target_repr),
                        _csv_safe(entry.reason),
                        "" if entry.before is None else json.dumps(entry.before, sort_keys=True),
                        "" if entry.after is None else json.dumps(entry.after, sort_keys=True),
                        entry.ip or "",
                    ]
                )

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="promptreel-audit.csv"'
        return response
