from django import forms

from generation import catalogue
from generation.render import ASPECT_RATIOS, MOTION_PRESETS

# The words the site uses for each kind of endpoint (catalogue "kind"), in the order shown.
MODE_LABELS = {
    "text": "Text",
    "image": "Image",
    "scenes": "Scenes",
    "frames": "Keyframes",
    "effect": "Effects",
    "additions": "Additions",
    "swaps": "Swaps",
}
MODE_HINTS = {
    "text": "Describe a shot; the model films it.",
    "image": "Bring a still; the model sets it in motion.",
    "effect": "Bring a still; pick an effect.",
}


def version_of(endpoint) -> str:
    """'Pika 2.2' from the title 'Pika 2.2 · text to video'."""
    return endpoint.title.split(" · ")[0]


def endpoint_label(endpoint) -> str:
    """How people read an endpoint: 'Image · Pika 2.2', never the fal id."""
    return f"{MODE_LABELS.get(endpoint.kind, endpoint.kind.title())} · {version_of(endpoint)}"


def _endpoint_choices():
    # Retired endpoints are not offered; nor are unpriced ones until FAL_PRICE_OVERRIDES
    # prices them (the API explains that refusal; the site has nothing to explain it with).
    return [
        (e.id, endpoint_label(e))
        for e in catalogue.endpoints()
        if e.on_website and catalogue.is_priced(e)
    ]


class Chips(forms.RadioSelect):
    """Radio buttons the stylesheet shows as pills (templates/generation/_chips.html)."""


class GenerateForm(forms.Form):
    """Collects raw input; the catalogue, not this form, decides what is valid."""

    endpoint = forms.ChoiceField(
        choices=_endpoint_choices, initial=catalogue.DEFAULT_TEXT_ENDPOINT, label="Model"
    )
    prompt = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "A red fox trots through fresh snow at dawn…"}
        ),
        required=False,
    )
    negative_prompt = forms.CharField(required=False, label="Leave out")
    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP")
    # A CharField, not a URLField: safe_fetch judges the link and explains what to fix.
    image_url = forms.CharField(
        required=False,
        max_length=2048,
        label="…or an image link",
        widget=forms.TextInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )
    # The signed name of an image kept from the last submit (generation.drafts).
    image_draft = forms.CharField(required=False, widget=forms.HiddenInput, max_length=1000)
    pikaffect = forms.ChoiceField(
        required=False,
        label="Effect",
        widget=Chips,
        initial="Inflate",
        choices=[
            (c, c)
            for c in catalogue.get_endpoint("fal-ai/pika/v1.5/pikaffects").choices("pikaffect")
        ],
    )
    # Not required here: the page does not send what the chosen endpoint does not take, and
    # catalogue.validate_input fills in the endpoint's defaults.
    aspect_ratio = forms.ChoiceField(
        required=False,
        choices=[(a, a) for a in ASPECT_RATIOS],
        initial="16:9",
        widget=Chips,
        label="Shape",
    )
    resolution = forms.ChoiceField(
        required=False,
        choices=[("480p", "480p"), ("720p", "720p"), ("1080p", "1080p HD")],
        initial="720p",
        widget=Chips,
        label="Quality",
    )
    duration = forms.ChoiceField(
        required=False,
        choices=[("5", "5 s"), ("10", "10 s")],
        initial="5",
        widget=Chips,
        label="Length",
    )
    preset = forms.ChoiceField(
        choices=list(MOTION_PRESETS.items()), initial="static", label="Camera", widget=Chips
    )
    seed = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2**32 - 1,
        help_text="The same seed and settings give the same clip. Empty: a new one each time.",
    )

    def endpoint_inputs(self) -> dict:
        """The cleaned values the chosen endpoint takes, and no others."""
        endpoint = catalogue.get_endpoint(self.cleaned_data["endpoint"])
        names = ["prompt", "negative_prompt", "pikaffect", "aspect_ratio", "resolution", "duration"]
        return {
            name: self.cleaned_data[name]
            for name in names
            if name in endpoint.fields and self.cleaned_data.get(name) not in (None, "")
        }
