from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generation.models import Generation, State


class AuditLogImmutable(Exception):
    """The audit log is append-only: rows are never updated or deleted."""


class AuditAction(models.TextChoices):
    AUTO_HOLD = "moderation.auto_hold", "Held by the automatic check"
    AUTO_BLOCK = "moderation.auto_block", "Blocked by the automatic check"
    APPROVE = "moderation.approve", "Approved a held generation"
    REJECT = "moderation.reject", "Rejected a held generation"
    TAKE_DOWN = "moderation.take_down", "Took an output down"
    RESTORE = "moderation.restore", "Restored a taken-down output"
    REPORT_DISMISS = "moderation.report_dismiss", "Dismissed reports"
    SUSPEND = "user.suspend", "Suspended a user"
    AUTO_SUSPEND = "user.auto_suspend", "Suspended automatically (repeat violations)"
    UNSUSPEND = "user.unsuspend", "Lifted a suspension"
    CREDIT_ADJUST = "billing.credit_adjust", "Adjusted credits (staff)"
    PLAN_CHANGE = "billing.plan_change", "Changed a plan (staff)"
    API_KEY_CREATE = "api.key_create", "Created an API key"
    API_KEY_REVOKE = "api.key_revoke", "Revoked an API key"
    FLAG = "user.flag", "Flagged for review (burst of requests)"
    STAFF_LOGIN = "auth.staff_login", "Staff signed in"
    STAFF_LOGIN_FAILED = "auth.staff_login_failed", "Failed sign-in to a staff account"
    LOGIN_LOCKED = "auth.login_locked", "Sign-in locked (too many failed attempts)"


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogImmutable("Audit entries cannot be updated.")

    def delete(self):
        raise AuditLogImmutable("Audit entries cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("Audit entries cannot be updated.")

    def update_or_create(self, *args, **kwargs):
        raise AuditLogImmutable("Audit entries cannot be updated.")

    def _raw_delete(self, using):
        raise AuditLogImmutable("Audit entries cannot be deleted.")


class AuditEntry(models.Model):
    """Who did what to what, and when. Append-only: written by moderation.services.audit_record."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    # Kept if the user is deleted: the email at the time stays in actor_repr.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for the system (automatic checks and suspensions).",
    )
    actor_repr = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices, db_index=True)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True, db_index=True)
    target_repr = models.CharField(max_length=300, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_repr or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditLogImmutable("Audit entries cannot be updated.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("Audit entries cannot be deleted.")


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
    decision_note = models.TextField(blank=True)
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
