"""The scheduled cleanup: orphaned and abandoned media go, referenced media stay."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from generation import retention
from generation.models import GenerationInput, State
from generation.schedules import SCHEDULES
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db


def save(name: str) -> str:
    return default_storage.save(name, io.BytesIO(b"data"))


def test_cleanup_is_scheduled():
    assert ("clean up media", "generation.retention.cleanup", 60) in SCHEDULES


def test_orphans_go_after_the_grace_period_referenced_files_stay(storage, user, settings):
    settings.MEDIA_ORPHAN_RETENTION_HOURS = 24
    clip = GenerationFactory(
        user=user,
        state=State.SUCCEEDED,
        output=save(f"outputs/{user.pk}/kept.mp4"),
        poster=save(f"posters/{user.pk}/kept.jpg"),
    )
    GenerationInput.objects.create(
        generation=clip, position=0, file=save(f"inputs/{user.pk}/kept.jpg"), content_type="x"
    )
    deleted_clip = GenerationFactory(
        user=user, state=State.SUCCEEDED, output=save(f"outputs/{user.pk}/gone.mp4")
    )
    deleted_clip.delete()  # a hard delete leaves the file behind
    failed_upload = save(f"inputs/{user.pk}/failed-create.jpg")

    # Within the grace period nothing is touched: a file may be waiting for its row.
    assert retention.cleanup()["orphans_deleted"] == 0
    assert default_storage.exists(failed_upload)

    report = retention.cleanup(now=timezone.now() + timedelta(hours=25))
    assert report["orphans_deleted"] == 2
    assert not default_storage.exists(f"outputs/{user.pk}/gone.mp4")
    assert not default_storage.exists(failed_upload)
    for name in (clip.output.name, clip.poster.name, clip.inputs.get().file.name):
        assert default_storage.exists(name), name


def test_inputs_of_abandoned_generations_go_succeeded_ones_stay(storage, user, settings):
    settings.MEDIA_ABANDONED_INPUT_DAYS = 30
    long_ago = timezone.now() - timedelta(days=31)
    failed = GenerationFactory(user=user, state=State.FAILED, finished_at=long_ago)
    recent = GenerationFactory(user=user, state=State.CANCELED, finished_at=timezone.now())
    succeeded = GenerationFactory(
        user=user, state=State.SUCCEEDED, output="outputs/x.mp4", finished_at=long_ago
    )
    rows = {}
    for generation in (failed, recent, succeeded):
        rows[generation.pk] = GenerationInput.objects.create(
            generation=generation,
            position=0,
            file=save(f"inputs/{user.pk}/{generation.pk}.jpg"),
            content_type="image/jpeg",
        )
    report = retention.cleanup()
    assert report["abandoned_inputs_deleted"] == 1
    assert not default_storage.exists(rows[failed.pk].file.name)
    rows[failed.pk].refresh_from_db()
    assert rows[failed.pk].file.name == ""
    assert default_storage.exists(rows[recent.pk].file.name)
    assert default_storage.exists(rows[succeeded.pk].file.name)

    settings.MEDIA_ABANDONED_INPUT_DAYS = 0  # 0 keeps them
    recent.finished_at = long_ago
    recent.save()
    assert retention.cleanup()["abandoned_inputs_deleted"] == 0


def test_old_render_folders_go(settings):
    old = settings.LOCAL_RENDER_DIR / "old-job"
    new = settings.LOCAL_RENDER_DIR / "new-job"
    for folder in (old, new):
        folder.mkdir(parents=True)
        (folder / "output.mp4").write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert retention.cleanup()["render_dirs_deleted"] == 1
    assert not old.exists() and new.exists()
