"""The audit log is append-only: in the ORM, in admin, for everyone."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from core.audit import audit_record
from core.models import AppendOnly, AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry(moderator, user):
    return audit_record(
        actor=moderator,
        action="user.suspend",
        target=user,
        reason="=HYPERLINK(evil)",
        before={"suspended": False},
        after={"suspended": True},
    )


def test_audit_record_writes_everything(entry, moderator, user):
    assert entry.actor == moderator and entry.actor_repr == moderator.email
    assert entry.target_type.model == "user" and entry.target_id == str(user.pk)
    assert entry.target_repr == user.email and entry.created_at


def test_unknown_actions_are_refused(user):
    with pytest.raises(ValueError):
        audit_record(actor=None, action="made.up", target=user)


def test_entries_cannot_be_updated_or_deleted_through_the_orm(entry):
    entry.reason = "rewritten"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(AppendOnly):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnly):
        AuditEntry.objects.bulk_update([entry], ["reason"])
    with pytest.raises(AppendOnly):
        AuditEntry.objects.update_or_create(pk=entry.pk, defaults={"reason": "x"})
    assert AuditEntry.objects.get().reason == "=HYPERLINK(evil)"


def test_admin_is_read_only_even_for_superusers(entry, admin_client, moderator_client):
    change = reverse("admin:core_auditentry_change", args=[entry.pk])
    delete = reverse("admin:core_auditentry_delete", args=[entry.pk])
    for client in (admin_client, moderator_client):
        page = client.get(change)
        assert page.status_code == 200
        assert b'name="_save"' not in page.content
        client.post(change, {"reason": "rewritten"})
        assert client.get(delete).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        assert client.get(reverse("admin:core_auditentry_add")).status_code == 403
        changelist = reverse("admin:core_auditentry_changelist")
        response = client.post(
            changelist, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
        )
        assert response.status_code in (200, 302)
    assert AuditEntry.objects.get().reason == "=HYPERLINK(evil)"


def test_nobody_has_delete_or_change_permissions():
    permissions = Permission.objects.filter(
        content_type__app_label="core", codename__endswith="auditentry"
    )
    codenames = set(permissions.values_list("codename", flat=True))
    assert codenames == {"view_auditentry"}


def test_changelist_filters_and_csv_export(entry, moderator_client, user):
    audit_record(actor=None, action="moderation.auto_hold", target=user, reason="rules")
    changelist = reverse("admin:core_auditentry_changelist")
    page = moderator_client.get(changelist, {"action__exact": "user.suspend"})
    assert page.status_code == 200 and page.context["cl"].result_count == 1
    assert b"Export CSV" in page.content
    export = reverse("admin:core_auditentry_export")
    response = moderator_client.get(export, {"action__exact": "user.suspend"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["created_at", "actor_repr", "action"]
    assert len(rows) == 2
    assert rows[1][2] == "user.suspend"
    assert rows[1][6] == "'=HYPERLINK(evil)"  # no spreadsheet formula injection
    assert rows[1][7] == '{"suspended": false}'
    everything = moderator_client.get(export)
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))) == 3
    # And as an action on selected rows.
    response = moderator_client.post(
        changelist, {"action": "export_selected", "_selected_action": [entry.pk]}
    )
    assert response["Content-Type"].startswith("text/csv")


def test_plain_staff_cannot_read_or_export(entry, staff_client):
    assert staff_client.get(reverse("admin:core_auditentry_changelist")).status_code == 403
    assert staff_client.get(reverse("admin:core_auditentry_export")).status_code == 403


def test_deleting_a_user_keeps_their_entries(entry, moderator):
    moderator.delete()
    kept = AuditEntry.objects.get()
    assert kept.actor is None and kept.actor_repr == "mod@example.com"
