from django import forms

from . import catalogue
from .render import ASPECT_RATIOS, MOTION_PRESETS


def _endpoint_choices():
    # Retired endpoints are not offered; nor are unpriced ones until FAL_PRICE_OVERRIDES
    # prices them (the API explains that refusal; the site has nothing to explain it with).
    return [
        (e.id, e.title) for e in catalogue.endpoints() if e.on_website and catalogue.is_priced(e)
    ]


class GenerateForm(forms.Form):
    """Collects raw input; the catalogue, not this form, decides what is valid."""

    endpoint = forms.ChoiceField(choices=_endpoint_choices, initial=catalogue.DEFAULT_TEXT_ENDPOINT)
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    negative_prompt = forms.CharField(required=False)
    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP")
    # A CharField, not a URLField: safe_fetch judges the link and explains what to fix.
    image_url = forms.CharField(
        required=False,
        max_length=2048,
        label="…or image link",
        help_text="An https:// link to a JPEG, PNG or WebP image",
    )
    pikaffect = forms.ChoiceField(
        required=False,
        choices=[("", "—")]
        + [
            (c, c)
            for c in catalogue.get_endpoint("fal-ai/pika/v1.5/pikaffects").choices("pikaffect")
        ],
    )
    aspect_ratio = forms.ChoiceField(choices=[(a, a) for a in ASPECT_RATIOS], initial="16:9")
    resolution = forms.ChoiceField(
        choices=[("480p", "480p"), ("720p", "720p"), ("1080p", "1080p")], initial="720p"
    )
    duration = forms.ChoiceField(choices=[("5", "5 seconds"), ("10", "10 seconds")], initial="5")
    preset = forms.ChoiceField(
        choices=list(MOTION_PRESETS.items()), initial="static", label="Motion"
    )
    seed = forms.IntegerField(required=False, min_value=0, max_value=2**32 - 1)

    def endpoint_inputs(self) -> dict:
        """The cleaned values the chosen endpoint takes, and no others."""
        endpoint = catalogue.get_endpoint(self.cleaned_data["endpoint"])
        names = ["prompt", "negative_prompt", "pikaffect", "aspect_ratio", "resolution", "duration"]
        return {
            name: self.cleaned_data[name]
            for name in names
            if name in endpoint.fields and self.cleaned_data.get(name) not in (None, "")
        }
