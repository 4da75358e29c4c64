"""Sign-up with policy acceptance (allauth's ACCOUNT_SIGNUP_FORM_CLASS) and the report form.

allauth builds its sign-up form on top of SignupForm, so this module must not import
allauth.account.forms (that would be circular).
"""

from django import forms
from django.urls import reverse_lazy
from django.utils.functional import lazy
from django.utils.html import format_html

from core.net import client_ip

from .policy import get_policy


def _acceptance_label():
    return format_html(
        'I accept the <a href="{}" target="_blank">content policy</a> and the '
        '<a href="{}" target="_blank">acceptable use policy</a>.',
        reverse_lazy("policy_content"),
        reverse_lazy("policy_acceptable_use"),
    )


class SignupForm(forms.Form):
    # allauth's signup form takes this class as its base and honours field_order: the
    # policies box after the passwords, not between the email and the password.
    field_order = ["email", "password1", "password2", "accept_policies"]

    accept_policies = forms.BooleanField(
        required=True,
        label=lazy(_acceptance_label, str)(),
        error_messages={
            "required": "You need to accept the content and acceptable use policies to sign up."
        },
    )

    def signup(self, request, user):

        from .models import PolicyAcceptance

        PolicyAcceptance.objects.create(
            user=user, version=get_policy().version, ip=client_ip(request)
        )


OTHER = "other"


class ReportForm(forms.Form):
    reason = forms.ChoiceField(label="What is wrong with it?")
    details = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Details (optional)",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Nothing chosen at first: a report must say what is wrong, not default to a policy.
        self.fields["reason"].choices = [
            ("", "Choose a reason…"),
            *get_policy().choices(),
            (OTHER, "Something else"),
        ]
