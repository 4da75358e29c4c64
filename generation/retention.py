"""Scheduled media cleanup (generation.schedules: "clean up media", hourly).

A clip its owner deletes on the site loses its files at once (generation_delete) and keeps a
hidden row; a generation deleted by an admin or a cascade (account deletion) is simply gone,
and its files with it from the database's point of view. So this works from the storage side:

1. Orphans: every object under inputs/, outputs/, posters/ and drafts/ (images kept across a
   generate form's error, generation.drafts, never referenced by a row) that no Generation or
   GenerationInput row refers to, and that is older than MEDIA_ORPHAN_RETENTION_HOURS, is
   deleted. That covers deleted generations, uploads whose create failed after the file was
   saved, and videos whose finalize lost a race. The grace period protects files that are
   being saved right now, before their row is committed.
2. Abandoned inputs: input images of generations that ended without a video (failed,
   canceled, blocked) more than MEDIA_ABANDONED_INPUT_DAYS ago are deleted and the row's file
   is blanked. Inputs of succeeded generations are kept: "Render in HD" repeats them.
3. The offline renderer's job folders (LOCAL_RENDER_DIR) older than
   LOCAL_RENDER_RETENTION_HOURS.

Works on FileSystemStorage and S3Storage alike (listdir + get_modified_time + delete).
"""

import logging
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from .media import delete_quietly
from .models import Generation, GenerationInput, State

log = logging.getLogger(__name__)

PREFIXES = ("inputs", "outputs", "posters", "drafts")
BATCH = 500


def cleanup(*, now: datetime | None = None) -> dict[str, int]:
    """Run all three sweeps; returns counts (also logged). Safe to run concurrently."""
    now = now or timezone.now()
    report = {
        "orphans_deleted": delete_orphans(
            older_than=now - timedelta(hours=settings.MEDIA_ORPHAN_RETENTION_HOURS)
        ),
        "abandoned_inputs_deleted": 0,
        "render_dirs_deleted": delete_render_dirs(
            older_than=now - timedelta(hours=settings.LOCAL_RENDER_RETENTION_HOURS)
        ),
    }
    if settings.MEDIA_ABANDONED_INPUT_DAYS > 0:
        report["abandoned_inputs_deleted"] = delete_abandoned_inputs(
            finished_before=now - timedelta(days=settings.MEDIA_ABANDONED_INPUT_DAYS)
        )
    log.info("media cleanup: %s", report)
    return report


def stored_names(prefix: str) -> Iterator[str]:
    """Every file name under prefix in default_storage, depth first."""
    try:
        directories, files = default_storage.listdir(prefix)
    except FileNotFoundError:  # FileSystemStorage, before the first upload
        return
    for name in files:
        yield f"{prefix}/{name}"
    for directory in directories:
        yield from stored_names(f"{prefix}/{directory}")


def referenced(names: list[str]) -> set[str]:
    """The names among these that some row points to."""
    found = set(GenerationInput.objects.filter(file__in=names).values_list("file", flat=True))
    found |= set(Generation.objects.filter(output__in=names).values_list("output", flat=True))
    found |= set(Generation.objects.filter(poster__in=names).values_list("poster", flat=True))
    return found


def delete_orphans(*, older_than: datetime) -> int:
    deleted = 0
    for prefix in PREFIXES:
        batch: list[str] = []
        for name in stored_names(prefix):
            batch.append(name)
            if len(batch) >= BATCH:
                deleted += _delete_unreferenced(batch, older_than)
                batch = []
        if batch:
            deleted += _delete_unreferenced(batch, older_than)
    return deleted


def _delete_unreferenced(names: list[str], older_than: datetime) -> int:
    deleted = 0
    keep = referenced(names)
    for name in names:
        if name in keep:
            continue
        try:
            if default_storage.get_modified_time(name) >= older_than:
                continue  # maybe being saved right now; its row may not be committed yet
            default_storage.delete(name)
        except FileNotFoundError:
            continue  # another cleanup got there first
        except Exception:
            log.exception("could not delete orphan %s", name)
            continue
        log.info("deleted orphan media file %s", name)
        deleted += 1
    return deleted


def delete_abandoned_inputs(*, finished_before: datetime) -> int:
    rows = (
        GenerationInput.objects.filter(
            generation__state__in=[State.FAILED, State.CANCELED, State.BLOCKED],
            generation__finished_at__lt=finished_before,
        )
        .exclude(file="")
        .only("pk", "file")
    )
    count = 0
    for row in rows.iterator(chunk_size=BATCH):
        delete_quietly(row.file.name)
        GenerationInput.objects.filter(pk=row.pk, file=row.file.name).update(file="")
        count += 1
    return count


def delete_render_dirs(*, older_than: datetime) -> int:
    root = Path(settings.LOCAL_RENDER_DIR)
    if not root.is_dir():
        return 0
    cutoff = older_than.timestamp()
    count = 0
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)
                count += 1
        except FileNotFoundError:
            continue
    return count
