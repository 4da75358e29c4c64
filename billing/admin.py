from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from core.admin_dates import BoundedDateHierarchyAdmin

from . import services
from .errors import LedgerError
from .forms import AdjustCreditsForm, ChangePlanForm
from .models import CreditAccount, LedgerEntry, PlanChange, StripeEvent


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    fk_name = "account"
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at", "-id"]
    fields = [
        "created_at",
        "kind",
        "monthly",
        "purchased",
        "amount",
        "generation",
        "reason",
        "actor",
    ]
    readonly_fields = fields
    show_change_link = False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CreditAccount)
class CreditAccountAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "plan",
        "balance_monthly",
        "balance_purchased",
        "monthly_expires_at",
        "subscription_status",
        "tools",
    ]
    list_filter = ["plan", "subscription_status"]
    search_fields = ["user__email", "stripe_customer_id", "stripe_subscription_id"]
    # Balances and plans move only through the ledger and the tools below.
    readonly_fields = [f.name for f in CreditAccount._meta.fields]
    inlines = [EntryInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Staff tools")
    def tools(self, obj):
        return format_html(
            '<a href="{}">Grant / adjust credits</a> · <a href="{}">Change plan</a>',
            reverse("admin:billing_creditaccount_adjust", args=[obj.pk]),
            reverse("admin:billing_creditaccount_plan", args=[obj.pk]),
        )

    def get_urls(self):
        own = [
            path(
                "<int:pk>/adjust/",
                self.admin_site.admin_view(self.adjust_view),
                name="billing_creditaccount_adjust",
            ),
            path(
                "<int:pk>/plan/",
                self.admin_site.admin_view(self.plan_view),
                name="billing_creditaccount_plan",
            ),
        ]
        return own + super().get_urls()

    def _allowed(self, request):
        return request.user.is_staff and request.user.has_perm("billing.change_creditaccount")

    def adjust_view(self, request, pk):
        account = get_object_or_404(CreditAccount, pk=pk)
        if not self._allowed(request):
            messages.error(request, "You may not adjust credits.")
            return redirect("admin:billing_creditaccount_changelist")
        form = AdjustCreditsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.credits_adjust(
                    user=account.user,
                    amount=form.cleaned_data["amount"],
                    bucket=form.cleaned_data["bucket"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except LedgerError as exc:
                form.add_error("amount", str(exc))
            else:
                messages.success(
                    request, f"{form.cleaned_data['amount']:+d} credits for {account.user}."
                )
                return redirect("admin:billing_creditaccount_change", pk)
        return self._form_page(request, account, form, "Grant or adjust credits")

    def plan_view(self, request, pk):
        account = get_object_or_404(CreditAccount, pk=pk)
        if not self._allowed(request):
            messages.error(request, "You may not change plans.")
            return redirect("admin:billing_creditaccount_changelist")
        form = ChangePlanForm(request.POST or None, initial={"plan": account.plan})
        if request.method == "POST" and form.is_valid():
            services.plan_change(
                account=account,
                plan=form.cleaned_data["plan"],
                source="staff",
                actor=request.user,
                reason=form.cleaned_data["reason"],
                grant_credits=form.cleaned_data["grant_credits"],
            )
            messages.success(request, f"{account.user} is on {form.cleaned_data['plan']}.")
            return redirect("admin:billing_creditaccount_change", pk)
        return self._form_page(request, account, form, "Change plan")

    def _form_page(self, request, account, form, title):
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {account.user}",
            "account": account,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "billing/admin_form.html", context)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(BoundedDateHierarchyAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "account", "kind", "monthly", "purchased", "amount", "actor"]
    list_filter = ["kind"]
    search_fields = ["account__user__email", "idempotency_key", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["account__user", "actor"]


@admin.register(PlanChange)
class PlanChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "from_plan", "to_plan", "source", "actor", "reason"]
    list_filter = ["source", "to_plan"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "outcome"]
    list_filter = ["type"]
    search_fields = ["event_id"]
