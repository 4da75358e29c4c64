"""The moderators' tools in Django admin (staff with the moderation.moderate permission).

Queues: held generations and reported outputs, with previews and bulk actions. History:
moderation cases, reports, take-downs, user standings and the append-only audit log.
"""

import csv
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from core.admin_dates import BoundedDateHierarchyAdmin
from core.models import AuditEntry
from moderation import services
from moderation.models import (
    HeldGeneration,
    ModerationCase,
    Report,
    ReportedGeneration,
    TakeDown,
    UserStanding,
)
from moderation.policy import get_policy
from workflows import review


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
    if generation.inputs.all():  # prefetched by the queue's queryset
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


class DecisionForm(forms.Form):
    """One decision on one item: the policy it falls under, a note for moderators, and what the
    owner is told (the policy's explanation plus the message, on the page and by email)."""

    category = forms.ChoiceField(required=False, label="Policy")
    message = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        label="Message to the owner (optional)",
        help_text="Shown on their video page and in the email they get.",
    )
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        label="Private note (moderators only)",
        help_text="Kept in the case and the audit log; never shown to the owner.",
    )

    def __init__(self, *args, with_category: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if with_category:
            self.fields["category"].choices = [("", "— as flagged —"), *get_policy().choices()]
        else:
            del self.fields["category"]


SUSPEND_OWNER = (
    "Suspend the owner",
    False,
    "They cannot start videos or use API keys until unsuspended.",
)


class Decisions:
    """Buttons for each decision on every row of a queue and on each item's page, each opening
    a one-form page: from the admin index, a decision is three clicks (the queue, the button,
    Confirm). `decisions` maps a name to (button label, asks for a policy, help text)."""

    decisions: dict[str, tuple[str, bool, str]] = {}

    def decide(self, generation, *, decision: str, request, data) -> bool:
        raise NotImplementedError

    @admin.display(description="Decide")
    def decision_buttons(self, obj):
        opts = self.model._meta
        links = [
            format_html(
                '<a class="button desk-decision" href="{}">{}</a>',
                reverse(f"admin:{opts.app_label}_{opts.model_name}_decide", args=[obj.pk, name]),
                label,
            )
            for name, (label, _, _) in self.decisions.items()
        ]
        return format_html(" ".join(["{}"] * len(links)), *links)

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name=f"{opts.app_label}_{opts.model_name}_decide",
            ),
            *super().get_urls(),
        ]

    def decide_view(self, request, object_id, decision):
        if decision not in self.decisions or not self.has_moderate_permission(request):
            raise PermissionDenied
        generation = self.get_object(request, object_id)
        if generation is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        label, with_category, help_text = self.decisions[decision]
        form = DecisionForm(request.POST or None, with_category=with_category)
        if request.method == "POST" and form.is_valid():
            if decision == "suspend":  # the same on every queue: the item's owner
                done = services.user_suspend(
                    user=generation.user,
                    actor=request.user,
                    reason=form.cleaned_data["note"],
                    request=request,
                )
            else:
                done = self.decide(
                    generation, decision=decision, request=request, data=form.cleaned_data
                )
            if done:
                self.message_user(request, f"{label}: done.", messages.SUCCESS)
            else:
                self.message_user(request, f"{label}: nothing to do any more.", messages.WARNING)
            opts = self.model._meta
            return redirect(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": f"{label}?",
            "help_text": help_text,
            "form": form,
            "generation": generation,
            "preview": _preview(generation, width=360),
            "opts": self.model._meta,
            "label": label,
        }
        return TemplateResponse(request, "desk/decide.html", context)


class _GenerationQueue(ModeratorOnly, BoundedDateHierarchyAdmin):
    list_per_page = 25
    search_fields = ["id", "user__email", "prompt"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # The owner, their standing and the inputs come with the page's rows: a constant number
        # of queries per page, not a few per row. (Setting select_related here makes the
        # changelist skip list_select_related, so everything the columns read is named here.)
        return (
            super()
            .get_queryset(request)
            .select_related("user", "user__standing")
            .prefetch_related("inputs")
        )

    @admin.display(description="Preview")
    def preview(self, obj):
        return _preview(obj)

    @admin.display(description="Prompt")
    def prompt_short(self, obj):
        return Truncator(obj.prompt).chars(160)

    @admin.display(description="Owner")
    def owner(self, obj):
        standing = getattr(obj.user, "standing", None)
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
class HeldGenerationAdmin(Decisions, _GenerationQueue):
    list_display = [
        "created_at",
        "preview",
        "prompt_short",
        "flagged",
        "owner",
        "credit_cost",
        "decision_buttons",
    ]
    decisions = {
        "approve": ("Approve", False, "It runs now; the owner is told."),
        "reject": (
            "Reject",
            True,
            "It is blocked and its credits are released; the owner sees the policy's "
            "explanation and your message. A confirmed violation.",
        ),
        "suspend": SUSPEND_OWNER,
    }

    def decide(self, generation, *, decision, request, data):
        if decision == "approve":
            return review.held_approve(
                generation=generation,
                moderator=request.user,
                note=data["note"],
                message=data["message"],
                request=request,
            )
        if decision == "reject":
            return review.held_reject(
                generation=generation,
                moderator=request.user,
                category=data.get("category", ""),
                note=data["note"],
                message=data["message"],
                request=request,
            )
        raise ValueError(decision)

    list_filter = [
        "moderation_case__category",
        "moderation_case__source",
        "endpoint_id",
    ]
    actions = ["approve", "reject", "suspend_owner"]
    ordering = ["created_at"]  # oldest first: a queue
    fields = [
        "decision_buttons",
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
            review.held_approve(generation=g, moderator=request.user, request=request)
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
            review.held_reject(
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
class ReportedGenerationAdmin(Decisions, _GenerationQueue):
    list_display = [
        "created_at",
        "preview",
        "prompt_short",
        "report_summary",
        "open_reports",
        "taken_down",
        "owner",
        "decision_buttons",
    ]
    decisions = {
        "take_down": (
            "Take down",
            True,
            "Served to moderators only from now on; its reports close as actioned; the owner "
            "is told and it counts as a confirmed violation.",
        ),
        "dismiss": ("Dismiss the reports", False, "The reports close; the video stays up."),
        "suspend": SUSPEND_OWNER,
    }

    def decide(self, generation, *, decision, request, data):
        if decision == "take_down":
            return services.output_take_down(
                generation=generation,
                moderator=request.user,
                category=data.get("category", "") or _top_reason(generation),
                reason=data["note"],
                message=data["message"],
                request=request,
            )
        if decision == "dismiss":
            return bool(
                services.reports_dismiss(
                    generation=generation,
                    moderator=request.user,
                    reason=data["note"],
                    request=request,
                )
            )
        raise ValueError(decision)

    list_filter = ["reports__reason", "state"]
    actions = ["take_down", "dismiss_reports", "suspend_owner"]
    fields = [
        "decision_buttons",
        "preview",
        "report_summary",
        "taken_down",
        "prompt",
        "user",
        "state",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # Open reports and the take-down come with the page's rows (two queries in all).
        open_reports = Report.objects.filter(status=Report.Status.OPEN).order_by("created_at")
        return (
            super()
            .get_queryset(request)
            .select_related("takedown")
            .prefetch_related(Prefetch("reports", queryset=open_reports, to_attr="open_list"))
        )

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
            for r in obj.open_list
        ]
        return format_html("<ul>{}</ul>", format_html("".join(["{}"] * len(lines)), *lines))

    @admin.display(description="Taken down", boolean=True)
    def taken_down(self, obj):
        return hasattr(obj, "takedown")

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
                name="core_auditentry_export",
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
