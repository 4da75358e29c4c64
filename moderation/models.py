from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generation.models import Generation, State


class ModerationCase(models.Model):
    """Why a generation was held or blocked, and what a moderator decided.

    One per generation that the automatic check did not simply allow. Holds the prompt as it
    was checked (cleared after MODERATION_PROMPT_RETENTION_DAYS).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Awaiting a moderator"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        AUTO_BLOCKED = "auto_blocked", "Blocked automatically"

    generation = models.OneToOneField(
        Generation, on_delete=models.CASCADE, related_name="moderation_case"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=8)  # hold / block: the automatic decision
    source = models.CharField(max_length=16)  # rules / openai / error / manual
    category = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=120, blank=True)
    explanation = models.TextField(blank=True, help_text="What the user is told")
    detail = models.TextField(blank=True, help_text="For moderators: what matched")
    prompt = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(
        blank=True, help_text="Moderators only: never shown to the owner"
    )
    user_message = models.TextField(
        blank=True, help_text="The moderator's words to the owner (page and decision email)"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        permissions = [("moderate", "Can moderate content (held queue, reports, suspensions)")]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.title or self.category} ({self.generation_id})"


class TakeDown(models.Model):
    """An output that is no longer served to anyone but moderators."""

    generation = models.OneToOneField(Generation, on_delete=models.CASCADE, related_name="takedown")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True, help_text="What the owner is told")
    note = models.TextField(blank=True, help_text="Moderators only: never shown to the owner")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"take-down of {self.generation_id}"


class Report(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DISMISSED = "dismissed", "Dismissed"
        ACTIONED = "actioned", "Actioned"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_reports"
    )
    reason = models.CharField(max_length=40)
    details = models.TextField(blank=True, max_length=2000)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    # How many times the same reporter reported it (duplicates are folded into one row).
    times = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Never shown to the reporter.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "reporter"], name="report_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"report of {self.generation_id} by {self.reporter_id}"


class UserStanding(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="standing"
    )
    violations = models.PositiveIntegerField(default=0, help_text="Confirmed by a moderator")
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.TextField(blank=True)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set automatically (e.g. a burst of generations) for a moderator to look at.
    flagged_at = models.DateTimeField(null=True, blank=True)
    flag_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "user standings"

    def __str__(self) -> str:
        return str(self.user)

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class PolicyAcceptance(models.Model):
    """A user accepted the content policy and acceptable-use policy at sign-up."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="policy_acceptances"
    )
    version = models.CharField(max_length=40)
    accepted_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} accepted {self.version}"


# Proxy models: the moderators' queues in admin.
class HeldGenerationManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(state=State.HELD)


class HeldGeneration(Generation):
    objects = HeldGenerationManager()

    class Meta:
        proxy = True
        verbose_name = "held generation"
        verbose_name_plural = "held generations (queue)"


class ReportedGenerationManager(models.Manager):
    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(pk__in=Report.objects.filter(status=Report.Status.OPEN).values("generation_id"))
            .annotate(
                open_reports=models.Count("reports", filter=Q(reports__status=Report.Status.OPEN))
            )
        )


class ReportedGeneration(Generation):
    objects = ReportedGenerationManager()

    class Meta:
        proxy = True
        verbose_name = "reported output"
        verbose_name_plural = "reported outputs (queue)"
