from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Scope(models.TextChoices):
    GENERATIONS_READ = "generations:read", "Read generations"
    GENERATIONS_WRITE = "generations:write", "Create and cancel generations"
    ACCOUNT_READ = "account:read", "Read account, balance and limits"


class ApiKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    monthly_credit_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits this key may spend per calendar month"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("created_at")),
                name="apikey_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (
            self.expires_at is None or self.expires_at > timezone.now()
        )

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    """The first answer to a create request, replayed for a retry with the same key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    # The headers a replay must repeat (Location), as they went out.
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"

    @property
    def finished(self) -> bool:
        return self.response_status is not None


class RateCounter(models.Model):
    """A fixed-window request counter, for when Redis is not configured."""

    bucket = models.CharField(max_length=200)
    window_start = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bucket", "window_start"], name="rate_counter_window")
        ]

    def __str__(self) -> str:
        return f"{self.bucket}@{self.window_start}={self.count}"


class WebhookEvent(models.TextChoices):
    SUCCEEDED = "generation.succeeded"
    FAILED = "generation.failed"
    CANCELED = "generation.canceled"
    HELD = "generation.held"
    BLOCKED = "generation.blocked"


class WebhookSecret(models.Model):
    """The per-client signing secret (Standard Webhooks, `whsec_…`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook secret of {self.user_id}"


class GenerationWebhook(models.Model):
    """Where to tell an API client about one generation, and which events it wants."""

    generation = models.OneToOneField(
        "generation.Generation", on_delete=models.CASCADE, related_name="webhook"
    )
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"{self.generation_id} → {self.url}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    generation = models.ForeignKey(
        "generation.Generation", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    message_id = models.CharField(max_length=60, unique=True)
    url = models.URLField(max_length=2000)
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "event"], name="one_delivery_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.message_id} ({self.status})"
