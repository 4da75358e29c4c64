"""The staff dashboard at /admin/dashboard/ (staff only, through the admin's own login check):
volume, failures, stage latency, money, moderation and provider health, by day and by hour.
The figures come from desk.selectors; the charts from desk.charts."""

import datetime as dt

from django import forms
from django.contrib import admin
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from generation.models import State
from generation.stages import STAGES

from . import charts, selectors

DAY_CHOICES = (7, 30, 90)
STATE_SERIES = [
    ("succeeded", "Ready"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
    ("blocked", "Blocked"),
    ("held", "Held"),
    ("in_flight", "In flight"),
]
STAGE_SERIES = [(key, label) for key, label, *_ in STAGES]


class DashboardForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(n, f"{n} days") for n in DAY_CHOICES], coerce=int, required=False
    )
    day = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def __init__(self, *args, today: dt.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean_day(self):
        day = self.cleaned_data["day"] or self.today
        if day > self.today:
            raise forms.ValidationError("day is in the future; give a date up to today.")
        if day < self.today - dt.timedelta(days=max(DAY_CHOICES)):
            raise forms.ValidationError(f"day must be within the last {max(DAY_CHOICES)} days.")
        return day


def _state_values(period: selectors.Period) -> dict[str, int]:
    values = {key: period.states[key] for key, _ in STATE_SERIES if key != "in_flight"}
    values["in_flight"] = period.in_flight
    return values


def _stage_values(period: selectors.Period, index: int) -> dict[str, float | None]:
    return {
        key: period.stages[key][index] if key in period.stages else None for key, _ in STAGE_SERIES
    }


def dashboard_view(request):
    now = timezone.now()
    form = DashboardForm(request.GET or None, today=now.date())
    if request.GET and not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(
            f"Cannot show the dashboard: {problems}\n", status=400, content_type="text/plain"
        )
    data = form.cleaned_data if request.GET else {}
    days = data.get("days") or 30
    day = data.get("day") or now.date()
    figures = selectors.dashboard(days=days, day=day, now=now)
    daily, hourly = figures["daily"], figures["hourly"]
    day_labels = [f"{p.start:%d %b}" for p in daily]
    hour_labels = [f"{p.start:%H}h" for p in hourly]
    totals = figures["totals"]
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": days,
        "day_choices": DAY_CHOICES,
        "day": day,
        "previous_day": day - dt.timedelta(days=1),
        "next_day": day + dt.timedelta(days=1) if day < now.date() else None,
        "now": now,
        **figures,
        "top_errors": totals.errors.most_common(8),
        "endpoints": totals.endpoints.most_common(),
        "tiers": totals.tiers.most_common(),
        "blocked": totals.states[State.BLOCKED],
        "held": totals.states[State.HELD],
        "stage_series": STAGE_SERIES,
        "state_series": STATE_SERIES,
        "daily_chart": charts.bar_chart(
            title=f"Generations per day by state, last {days} days",
            labels=day_labels,
            series=STATE_SERIES,
            values=[_state_values(p) for p in daily],
        ),
        "hourly_chart": charts.bar_chart(
            title=f"Generations per hour by state, {day:%Y-%m-%d}",
            labels=hour_labels,
            series=STATE_SERIES,
            values=[_state_values(p) for p in hourly],
        ),
        "money_chart": charts.bar_chart(
            title="Provider spend and revenue per day (USD)",
            labels=day_labels,
            series=[("spend", "fal spend"), ("revenue", "Revenue")],
            values=[{"spend": float(p.fal_usd), "revenue": float(p.revenue_usd)} for p in daily],
            stacked=False,
            unit="$",
        ),
        "p95_daily_chart": charts.line_chart(
            title="95th percentile of each stage per day (seconds)",
            labels=day_labels,
            series=STAGE_SERIES,
            values=[_stage_values(p, 2) for p in daily],
            unit="s",
        ),
        "p95_hourly_chart": charts.line_chart(
            title=f"95th percentile of each stage per hour, {day:%Y-%m-%d} (seconds)",
            labels=hour_labels,
            series=STAGE_SERIES,
            values=[_stage_values(p, 2) for p in hourly],
            unit="s",
        ),
    }
    return TemplateResponse(request, "desk/dashboard.html", context)


# Behind the admin's login and is_staff check (anyone else is sent to the login page).
dashboard = admin.site.admin_view(dashboard_view)
