import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class State(models.TextChoices):
    HELD = "held", "Awaiting review"
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    IN_QUEUE = "in_queue", "In the provider's queue"
    IN_PROGRESS = "in_progress", "Rendering"
    FINALIZING = "finalizing", "Saving the video"
    SUCCEEDED = "succeeded", "Ready"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    BLOCKED = "blocked", "Blocked by moderation"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELED, State.BLOCKED})
# The provider holds the job in these states; they need polling or a webhook to move on.
AT_PROVIDER = frozenset({State.IN_QUEUE, State.IN_PROGRESS})

# The state machine (docs/architecture.md): target state -> the states it may be entered from.
_ACTIVE = {State.QUEUED, State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING}
ALLOWED_SOURCES: dict[str, frozenset[str]] = {
    # Approved by a moderator, or sent again after an infrastructure failure.
    State.QUEUED: frozenset({State.HELD, State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS}),
    State.SUBMITTING: frozenset({State.QUEUED}),
    State.IN_QUEUE: frozenset({State.SUBMITTING}),
    State.IN_PROGRESS: frozenset({State.IN_QUEUE}),
    State.FINALIZING: frozenset({State.IN_QUEUE, State.IN_PROGRESS}),
    # From held: a moderator approved a held output (workflows.review.held_approve).
    State.SUCCEEDED: frozenset({State.FINALIZING, State.HELD}),
    State.FAILED: frozenset(_ACTIVE),
    State.CANCELED: frozenset(_ACTIVE | {State.HELD}),
    State.BLOCKED: frozenset({State.HELD}),
    # Held at creation (set directly), or after submission: a provider's content-policy
    # refusal, or a finished video the output check flagged (workflows.review.output_hold).
    State.HELD: frozenset({State.SUBMITTING, State.IN_QUEUE, State.IN_PROGRESS, State.FINALIZING}),
}

# The row's timestamp for entering each state.
STAGE_TIMESTAMP = {
    State.QUEUED: "queued_at",
    State.SUBMITTING: "submitting_at",
    State.IN_QUEUE: "in_queue_at",
    State.IN_PROGRESS: "in_progress_at",
    State.FINALIZING: "finalizing_at",
    State.SUCCEEDED: "finished_at",
    State.FAILED: "finished_at",
    State.CANCELED: "finished_at",
    State.BLOCKED: "finished_at",
}


class Tier(models.TextChoices):
    PREVIEW = "preview", "Preview"
    HD = "hd", "HD"


class GenerationQuerySet(models.QuerySet):
    def transition(
        self,
        pk,
        to: str,
        *,
        sources: Iterable[str] | None = None,
        where: dict | None = None,
        **changes,
    ) -> bool:
        """Move one row to state `to` if it is in an allowed source state; True if it moved.

        A single conditional UPDATE, so a duplicate webhook, a racing tracker or a retried task
        that tries the same move finds the row already gone from the source state and does
        nothing. `where` adds conditions, e.g. that the caller still holds its lease.

        This is the row change alone: call it through workflows.lifecycle.generation_move,
        which adds what a move causes (credits, webhook outbox, audit) in one transaction.
        """
        allowed = ALLOWED_SOURCES[to]
        if sources is not None:
            allowed = allowed & frozenset(sources)
        now = timezone.now()
        if to in STAGE_TIMESTAMP:
            changes.setdefault(STAGE_TIMESTAMP[to], now)
        if to in TERMINAL:
            changes.setdefault("next_check_at", None)
        updated = self.filter(pk=pk, state__in=allowed, **(where or {})).update(
            state=to, updated_at=now, **changes
        )
        return updated == 1

    def visible_to(self, user):
        """The user's own generations that they have not deleted."""
        return self.filter(user=user, deleted_at__isnull=True)


def output_path(instance, filename):
    return f"outputs/{instance.user_id}/{instance.pk}.mp4"


def poster_path(instance, filename):
    return f"posters/{instance.user_id}/{instance.pk}.jpg"


class Generation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)

    # What was asked for.
    endpoint_id = models.CharField(max_length=100)
    backend = models.CharField(max_length=16)
    prompt = models.TextField(blank=True)
    preset = models.CharField(max_length=16, default="static")
    arguments = models.JSONField(help_text="The exact arguments sent to the provider")
    seed = models.BigIntegerField()
    resolution = models.CharField(max_length=8)
    duration = models.PositiveSmallIntegerField()
    aspect_ratio = models.CharField(max_length=8, blank=True)
    tier = models.CharField(max_length=8, choices=Tier.choices, default=Tier.PREVIEW)
    # A preview paid from the plan's daily allowance (credit_cost 0) — billing decides.
    free_preview = models.BooleanField(default=False)
    # "Render in HD": the preview this render repeats at 1080p (same prompt, image and seed).
    rerender_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rerenders"
    )
    # The API key that asked for it (None from the website): its monthly cap counts this row.
    api_key = models.ForeignKey(
        "api.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="generations"
    )
    credit_cost = models.PositiveIntegerField()
    fal_price_usd = models.DecimalField(max_digits=8, decimal_places=4)

    # The provider's side.
    provider_request_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    # fal's id of the run that answered, when fal retried the request on its side (its
    # webhook and, sometimes, its status carry it); the retried result may be reachable only
    # under it (workflows.pipeline, shared/fal-protocol.md section 1).
    gateway_request_id = models.CharField(max_length=100, blank=True, db_default="")
    # The current submit attempt's secret, carried in the fal_webhook URL: a webhook for a
    # submit whose answer was lost names its row by it (workflows.pipeline.generation_submit).
    submit_token = models.CharField(max_length=32, unique=True, null=True, blank=True)
    provider_urls = models.JSONField(default=dict, blank=True)
    queue_position = models.PositiveIntegerField(null=True, blank=True)
    provider_metrics = models.JSONField(default=dict, blank=True)
    # How long the provider ran it: fal's own figure when a poll brought its metrics; from a
    # webhook (which carries none) the time since we first saw it running, a little short of
    # fal's. What generation.polling times its polls by.
    inference_seconds = models.FloatField(null=True, blank=True)
    provider_output_url = models.URLField(max_length=2000, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    polls = models.PositiveIntegerField(default=0)
    # When the tracker should next look at this row (poll, retry, or re-run a stalled finalize).
    next_check_at = models.DateTimeField(null=True, blank=True)
    # When its owner asked the provider to stop it. fal stops a queued request but only
    # signals a running one, which may finish anyway (and is then charged as usual); the row
    # ends as the provider says (workflows.generations.generation_cancel).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)

    # The result, copied into our storage.
    output = models.FileField(upload_to=output_path, blank=True, max_length=300)
    # Deleted by its owner: the files are gone, the row stays for the ledger, moderation and
    # audit records that refer to it (generation_delete).
    deleted_at = models.DateTimeField(null=True, blank=True)
    # When the email saying it is ready or failed was dealt with (workflows.notifications):
    # claimed by one conditional UPDATE before the send (also when the owner's setting says
    # not to send), so no clip is ever announced twice; set by the move out of a moderator's
    # hold, whose decision email announces it.
    owner_notified_at = models.DateTimeField(null=True, blank=True)
    poster = models.FileField(upload_to=poster_path, blank=True, max_length=300)
    video_codec = models.CharField(max_length=16, blank=True)
    video_width = models.PositiveIntegerField(null=True, blank=True)
    video_height = models.PositiveIntegerField(null=True, blank=True)
    video_duration = models.FloatField(null=True, blank=True)
    video_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # The label of the C2PA manifest signed into the stored MP4 (generation.provenance).
    # db_default: rows inserted without it (code of the previous release during a deploy, old
    # migrations' historical models in tests) are valid too.
    c2pa_manifest = models.CharField(max_length=100, blank=True, db_default="")
    # What the request was, for reuse before paying twice (creative.reuse.request_digest):
    # the same user asking for the same digest is offered this clip. Empty on older rows.
    request_digest = models.CharField(max_length=64, blank=True, db_default="")
    # The built-in constraints added to the negative prompt (creative.constraints); empty when
    # off or when the endpoint takes no negative prompt.
    constraints = models.CharField(max_length=300, blank=True, db_default="")

    # When each stage was entered.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    submitting_at = models.DateTimeField(null=True, blank=True)
    in_queue_at = models.DateTimeField(null=True, blank=True)
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["state", "next_check_at"]),
            models.Index(
                fields=["user", "request_digest"],
                condition=~Q(request_digest=""),
                name="generation_request_digest",
            ),
            # generation.polling: the recent run times of one kind of job.
            models.Index(
                fields=["endpoint_id", "resolution", "duration", "-finished_at"],
                condition=Q(state=State.SUCCEEDED, inference_seconds__isnull=False),
                name="generation_recent_runs",
            ),
            # desk.rollup (hours of rows that ended since its last run) and desk.alerts (rows
            # that ended in the window).
            models.Index(
                fields=["finished_at"],
                condition=Q(finished_at__isnull=False),
                name="generation_finished",
            ),
            # workflows.notifications: the site's clips that ended and are not yet announced
            # (a row leaves it when claimed, so the sender never scans the day's clips).
            models.Index(
                fields=["finished_at"],
                condition=Q(
                    owner_notified_at__isnull=True,
                    api_key__isnull=True,
                    state__in=[State.SUCCEEDED, State.FAILED],
                ),
                name="generation_outcome_unsent",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=State.values), name="generation_state_valid"
            ),
            models.CheckConstraint(condition=Q(tier__in=Tier.values), name="generation_tier_valid"),
            models.CheckConstraint(
                condition=~Q(state=State.SUCCEEDED) | ~Q(output=""),
                name="generation_succeeded_has_output",
            ),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(state__in=sorted(TERMINAL)),
                name="generation_finished_only_when_terminal",
            ),
            models.CheckConstraint(
                condition=Q(seed__gte=0) & Q(seed__lte=2**32 - 1), name="generation_seed_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} · {self.get_state_display()} · {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("generation_detail", args=[self.pk])

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL


class GenerationInput(models.Model):
    """An image (or video) the user gave us, re-encoded and stored under a generated name."""

    class Kind(models.TextChoices):
        IMAGE = "image"
        VIDEO = "video"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.IMAGE)
    file = models.FileField(max_length=300)
    content_type = models.CharField(max_length=40)
    width = models.PositiveIntegerField(null=True)
    height = models.PositiveIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "kind", "position"], name="input_position_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.position} of {self.generation_id}"
