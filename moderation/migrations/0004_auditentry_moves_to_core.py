# The audit log moved to the core app (core.AuditEntry). Its table keeps its name, so the model
# state is all that moves; the content type is renamed so that its permissions (the moderators
# group's view_auditentry) and the entries' own target types carry over.

from django.db import migrations


def content_type_to_core(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="moderation", model="auditentry").update(app_label="core")


def content_type_to_moderation(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="core", model="auditentry").update(app_label="moderation")


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0003_userstanding_flag_reason_userstanding_flagged_at_and_more'),
        ('core', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='AuditEntry')],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_core, content_type_to_moderation),
    ]
