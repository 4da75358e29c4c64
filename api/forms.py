from django import forms
from django.utils import timezone

from .models import Scope

MAX_MONTHLY_CREDIT_CAP = 1_000_000_000


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What uses this key, e.g. 'render farm script'"
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=list(Scope.values)
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Optional; the key stops working then.",
    )
    # The column is a PositiveIntegerField: without a maximum, a 40-digit cap reached the
    # database and failed there (OverflowError, a 500).
    monthly_credit_cap = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MONTHLY_CREDIT_CAP,
        help_text="Optional; credits this key may spend per month.",
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at and expires_at <= timezone.now():
            raise forms.ValidationError("Pick a time in the future.")
        return expires_at


class WebhookTestForm(forms.Form):
    url = forms.URLField(
        max_length=2000,
        label="Receiver URL",
        assume_scheme="https",
        help_text="We POST a signed webhook.test event to it now and show how it answered.",
    )
