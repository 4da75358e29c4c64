from django import forms

from . import plans

MAX_ADJUST = 1_000_000_000


class AdjustCreditsForm(forms.Form):
    # Bounded: an unbounded number reached the BigIntegerField ledger and overflowed (a 500);
    # a billion credits is far beyond any real grant.
    amount = forms.IntegerField(
        min_value=-MAX_ADJUST,
        max_value=MAX_ADJUST,
        help_text="Credits to add (positive) or take away (negative)",
    )
    bucket = forms.ChoiceField(
        choices=[("purchased", "Purchased (never expire)"), ("monthly", "Monthly (expire)")],
        initial="purchased",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Kept on the entry"
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Must not be zero.")
        return amount


class ChangePlanForm(forms.Form):
    plan = forms.ChoiceField(choices=lambda: [(p.code, p.name) for p in plans.plans().values()])
    grant_credits = forms.BooleanField(
        required=False, help_text="Give the plan's monthly credits now (renewed monthly)"
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
