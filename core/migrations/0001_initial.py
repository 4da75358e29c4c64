# The audit log, moved here from the moderation app: its table (moderation_auditentry) already
# exists there, made by moderation 0001, so this changes only Django's model state.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("moderation", "0003_userstanding_flag_reason_userstanding_flagged_at_and_more"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AuditEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(
                                db_index=True, default=django.utils.timezone.now, editable=False
                            ),
                        ),
                        ("actor_repr", models.CharField(blank=True, max_length=254)),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("moderation.auto_hold", "Held by the automatic check"),
                                    ("moderation.auto_block", "Blocked by the automatic check"),
                                    ("moderation.approve", "Approved a held generation"),
                                    ("moderation.reject", "Rejected a held generation"),
                                    ("moderation.take_down", "Took an output down"),
                                    ("moderation.restore", "Restored a taken-down output"),
                                    ("moderation.report_dismiss", "Dismissed reports"),
                                    ("user.suspend", "Suspended a user"),
                                    (
                                        "user.auto_suspend",
                                        "Suspended automatically (repeat violations)",
                                    ),
                                    ("user.unsuspend", "Lifted a suspension"),
                                    ("billing.credit_adjust", "Adjusted credits (staff)"),
                                    ("billing.plan_change", "Changed a plan (staff)"),
                                    ("api.key_create", "Created an API key"),
                                    ("api.key_revoke", "Revoked an API key"),
                                    ("user.flag", "Flagged for review (burst of requests)"),
                                    ("generation.cancel", "Canceled a generation"),
                                    ("generation.fail", "A generation failed"),
                                    (
                                        "generation.retry",
                                        "A generation was queued again after a failure",
                                    ),
                                ],
                                db_index=True,
                                max_length=40,
                            ),
                        ),
                        ("target_id", models.CharField(blank=True, db_index=True, max_length=64)),
                        ("target_repr", models.CharField(blank=True, max_length=300)),
                        ("reason", models.TextField(blank=True)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("ip", models.GenericIPAddressField(blank=True, null=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                help_text="Empty for the system (automatic checks, workers and suspensions).",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "target_type",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="contenttypes.contenttype",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "audit entry",
                        "verbose_name_plural": "audit log",
                        "db_table": "moderation_auditentry",
                        "ordering": ["-created_at", "-id"],
                        "default_permissions": ("view",),
                        "indexes": [
                            models.Index(
                                fields=["target_type", "target_id"],
                                name="moderation__target__b739e6_idx",
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
