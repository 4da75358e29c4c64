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
    "scenes": "Bring several images (people, things, places); the model films them together.",
    "frames": "Bring 2 to 5 keyframes in order; the model moves from each to the next.",
    "effect": "Bring a still; pick an effect.",
    "additions": "Bring a video and an image; the model adds what the image shows.",
    "swaps": "Bring a video; name what to replace and with what.",
}
# Keyframes: at most this many transitions (the catalogue takes 2 to 5 keyframes).
MAX_TRANSITIONS = 4


def version_of(endpoint) -> str:
    """'Pika 2.2' from the title 'Pika 2.2 · text to video'."""
    return endpoint.title.split(" · ")[0]


def endpoint_label(endpoint) -> str:
    """How people read an endpoint: 'Image · Pika 2.2', never the fal id."""
    return f"{MODE_LABELS.get(endpoint.kind, endpoint.kind.title())} · {version_of(endpoint)}"


def _endpoint_choices():
    # Retired endpoints are not offered; nor are unpriced ones until FAL_PRICE_OVERRIDES
    # prices them (the page says which, studio.selectors.studio_unavailable).
    return [
        (e.id, endpoint_label(e))
        for e in catalogue.endpoints()
        if e.on_website and catalogue.is_priced(e)
    ]


FRAMES_ENDPOINT = "fal-ai/pika/v2.2/pikaframes"


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
    # Several files under one name for Scenes and Keyframes, in order (the view reads getlist).
    image = forms.FileField(required=False, help_text="JPEG, PNG or WebP")
    # A CharField, not a URLField: safe_fetch judges the link and explains what to fix.
    image_url = forms.CharField(
        required=False,
        max_length=2048,
        label="…or an image link",
        widget=forms.TextInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )
    # The signed names of the images kept from the last submit (generation.drafts), space
    # separated, and the order of kept (d) and new (u) images: "d u d" (static/js/generate.js).
    image_draft = forms.CharField(required=False, widget=forms.HiddenInput, max_length=8000)
    image_order = forms.CharField(required=False, widget=forms.HiddenInput, max_length=40)
    ingredients_mode = forms.ChoiceField(
        required=False,
        label="Ingredients",
        widget=Chips,
        initial="precise",
        choices=[("precise", "Precise"), ("creative", "Creative")],
    )
    # Additions and Swaps: the input video, a file or a link (judged by generation.media).
    video = forms.FileField(required=False, help_text="MP4, WebM or MOV, up to 30 s")
    video_url = forms.CharField(
        required=False,
        max_length=2048,
        label="…or a video link",
        widget=forms.TextInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )
    modify_region = forms.CharField(
        required=False,
        label="What to replace",
        widget=forms.TextInput(attrs={"placeholder": "the red car"}),
    )
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Keyframes: a prompt and a length for each move from one keyframe to the next. All
        # rows are on the page; the script shows one fewer than there are keyframes.
        spec = catalogue.get_endpoint(FRAMES_ENDPOINT).fields["transitions"]
        for number in range(1, MAX_TRANSITIONS + 1):
            self.fields[f"t{number}_prompt"] = forms.CharField(
                required=False, label=f"Keyframe {number} → {number + 1}"
            )
            self.fields[f"t{number}_duration"] = forms.IntegerField(
                required=False,
                min_value=spec["min_duration"],
                max_value=spec["max_duration"],
                initial=spec["default_duration"],
                label="Seconds",
                widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
            )

    def transition_rows(self):
        """(prompt field, duration field) for each possible transition, for the template."""
        return [
            (self[f"t{n}_prompt"], self[f"t{n}_duration"]) for n in range(1, MAX_TRANSITIONS + 1)
        ]

    def endpoint_inputs(self, image_count: int = 0) -> dict:
        """The cleaned values the chosen endpoint takes, and no others."""
        endpoint = catalogue.get_endpoint(self.cleaned_data["endpoint"])
        names = [
            "prompt",
            "negative_prompt",
            "pikaffect",
            "aspect_ratio",
            "resolution",
            "duration",
            "ingredients_mode",
            "modify_region",
        ]
        inputs = {
            name: self.cleaned_data[name]
            for name in names
            if name in endpoint.fields and self.cleaned_data.get(name) not in (None, "")
        }
        if "transitions" in endpoint.fields:
            inputs["transitions"] = [
                {
                    "duration": self.cleaned_data.get(f"t{n}_duration")
                    or self.fields[f"t{n}_duration"].initial,
                    **(
                        {"prompt": self.cleaned_data[f"t{n}_prompt"]}
                        if self.cleaned_data.get(f"t{n}_prompt")
                        else {}
                    ),
                }
                for n in range(1, min(max(image_count - 1, 1), MAX_TRANSITIONS) + 1)
            ]
        return inputs


class SettingsForm(forms.Form):
    notify_by_email = forms.BooleanField(
        required=False,
        label="Email me when a video is ready or could not be made",
        help_text="Clips made with an API key are announced by your webhooks instead.",
    )
