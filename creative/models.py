import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class PromptTemplate(models.Model):
    """A "director style" prompt with named slots: `text` names them as {slot}.

    Shared templates (owner NULL) ship in creative/templates.json and are written here after
    each migrate when missing (templating.templates_sync), so staff curate them in admin and an
    edit or a hidden one stays so. A user's own templates have an owner.
    """

    class Kind(models.TextChoices):
        CINEMATIC_INTRO = "cinematic_intro", "Cinematic intro"
        PRODUCT_SHOT = "product_shot", "Product shot"
        PORTRAIT = "portrait", "Portrait with subtle motion"
        BROLL = "broll", "B-roll"
        LOOP = "loop", "Loopable background"
        SEASONAL = "seasonal", "Seasonal promo"
        AD_VARIANT = "ad_variant", "Ad variant"
        LOCALISATION = "localisation", "Localisation variant"
        STORY = "story", "Story scene"
        OWN = "own", "My template"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="prompt_templates",
    )
    slug = models.SlugField(max_length=60)
    title = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description = models.CharField(max_length=300, blank=True)
    text = models.TextField(help_text="The prompt, with slots written as {name}")
    # [{"name": "subject", "label": "Subject", "default": "", "help": ""}, ...] in the order
    # the form shows them; a slot without a default must be filled.
    slots = models.JSONField(default=list)
    endpoint_id = models.CharField(max_length=100, help_text="The catalogue endpoint it suits")
    # Create fields the template suggests: aspect_ratio, resolution, duration, preset,
    # negative_prompt. A request's own values win.
    settings = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True, help_text="Offered to users")
    position = models.PositiveSmallIntegerField(default=100)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["slug"], condition=Q(owner__isnull=True), name="template_shared_slug"
            ),
            models.UniqueConstraint(fields=["owner", "slug"], name="template_owner_slug"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def shared(self) -> bool:
        return self.owner_id is None


class CreativePreference(models.Model):
    """A user's defaults for the creative tools. No row: every default (constraints on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="creative_preference",
    )
    constraints_on = models.BooleanField(default=True)
    # The user's own wording of the constraints; empty: constraints.DEFAULT_TERMS.
    constraints_text = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"creative preferences of {self.user_id}"


class Batch(models.Model):
    """Renders asked for in one action: variations of one request, or a storyboard's scenes.
    Each render is a normal generation (priced, held, settled alone); Recipe ties it here."""

    class Kind(models.TextChoices):
        VARIATIONS = "variations", "Variations"
        STORYBOARD = "storyboard", "Storyboard"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="creative_batches"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    # What was varied ("seed", or the slot's name), or the storyboard's source text.
    varied = models.CharField(max_length=60, blank=True)
    source_text = models.TextField(blank=True)
    template = models.ForeignKey(
        PromptTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    total_credits = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["variations", "storyboard"]), name="batch_kind_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.title or self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("batch_detail", args=[self.pk])


class Recipe(models.Model):
    """How a generation was composed with the creative tools: the template and slots it was
    filled from, and its place in a batch (with the owner's "keep")."""

    generation = models.OneToOneField(
        "generation.Generation", on_delete=models.CASCADE, primary_key=True, related_name="recipe"
    )
    template = models.ForeignKey(
        PromptTemplate, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    template_slug = models.SlugField(max_length=60, blank=True)
    slots = models.JSONField(default=dict, blank=True)
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="recipes"
    )
    position = models.PositiveSmallIntegerField(default=0)
    label = models.CharField(max_length=200, blank=True)
    kept = models.BooleanField(default=False)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "position"],
                condition=Q(batch__isnull=False),
                name="recipe_batch_position",
            )
        ]

    def __str__(self) -> str:
        return f"recipe of {self.generation_id}"
