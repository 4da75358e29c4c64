from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """An append-only record (ledger entry, audit entry) was asked to change or go."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly(f"{self.model.__name__} rows are never changed")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnly(f"{self.model.__name__} rows are never changed")

    def update_or_create(self, *args, **kwargs):
        raise AppendOnly(f"{self.model.__name__} rows are never changed")

    def delete(self):
        raise AppendOnly(f"{self.model.__name__} rows are never deleted")

    def _raw_delete(self, using):
        raise AppendOnly(f"{self.model.__name__} rows are never deleted")


class AppendOnlyModel(models.Model):
    """save() inserts only; update and delete are refused (the database cascade of a deleted
    user is the one way rows go)."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly(f"{type(self).__name__} rows are never changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly(f"{type(self).__name__} rows are never deleted")


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
    # Moves of a generation that end or redirect it (workflows.lifecycle), by whoever made them:
    # its owner, an API key, a moderator or a worker (actor empty, actor_repr names the process).
    GENERATION_CANCEL = "generation.cancel", "Canceled a generation"
    GENERATION_FAIL = "generation.fail", "A generation failed"
    GENERATION_RETRY = "generation.retry", "A generation was queued again after a failure"
    GENERATION_DELETE = "generation.delete", "Deleted a clip (owner)"
    STAFF_LOGIN = "auth.staff_login", "Staff signed in"
    STAFF_LOGIN_FAILED = "auth.staff_login_failed", "Failed sign-in to a staff account"
    LOGIN_LOCKED = "auth.login_locked", "Sign-in locked (too many failed attempts)"


class AuditEntry(AppendOnlyModel):
    """Who did what to what, and when. Append-only: written by core.audit.audit_record."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    # Kept if the user is deleted: the email at the time stays in actor_repr.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for the system (automatic checks, workers and suspensions).",
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

    class Meta:
        # The table keeps the name it had when the log lived in the moderation app.
        db_table = "moderation_auditentry"
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="moderation__target__b739e6_idx")
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_repr or 'system'} {self.action}"
