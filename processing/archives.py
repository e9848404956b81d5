"""ZIPs of a guest's photos built on the queue into storage, then served like any photo.

A web worker that streams a large ZIP is held for the whole transfer, at the
guest's network speed. Built here, the ZIP becomes a stored file that the
front proxy or S3 delivers (`gallery.serving.file_response`).

- `request_archive` names the photo set (`archive_key`) and reuses the
  archive of that set when there is one: a repeat request is free.
- `build_archive` is the queue task: it claims the archive with a conditional
  update (a duplicate delivery finds nothing to do), writes the ZIP to a
  temporary file outside any transaction, stores it, and marks it READY only
  if its claim still holds. A failure is retried with backoff, then left
  FAILED with its error for staff (admin).
- `delete_old_archives` is the hourly sweep; a new photo set deletes the
  guest's previous archives of the event at once.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F, Q
from django.db.models.fields.files import FieldFile
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from gallery.downloads import ZipEntry, zip_stream
from gallery.models import ArchiveStatus, Event, Photo, PhotoArchive, archive_key
from processing.backoff import scheduled_retry_delay

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger("processing.archives")

BUILD_ARCHIVE = "processing.archives.build_archive"
ARCHIVE_MAX_ATTEMPTS = 3
ARCHIVE_RETRY_BASE_DELAY = 30.0
ARCHIVE_RETRY_MAX_DELAY = 600.0
# A build claimed longer ago than this lost its worker (killed, recycled): it may be claimed again.
STALE_BUILD = timedelta(minutes=30)
# An archive that never got built (its task lost) is dropped by the sweep after this long.
STALE_PENDING = timedelta(hours=2)


def request_archive(user: User, event: Event, entries: list[ZipEntry], photo_ids: list[int]) -> PhotoArchive:
    """The archive of exactly `entries` for `user`, queued for building unless it exists.

    The caller has checked access and chosen the files (originals or
    watermarked copies, best match first); `photo_ids` are the photos they
    come from. The guest's older archives of the event, of other sets, are
    deleted. A FAILED archive is queued again: asking again is the guest's retry.
    """
    key = archive_key([str(entry.file.name) for entry in entries])
    stored = [
        {"name": entry.name, "file": str(entry.file.name), "size": entry.size, "modified": entry.modified.isoformat()}
        for entry in entries
    ]
    archive, created = PhotoArchive.objects.get_or_create(
        user=user, event=event, photos_key=key, defaults={"photo_ids": photo_ids, "entries": stored}
    )
    if created:
        superseded = PhotoArchive.objects.filter(user=user, event=event).exclude(pk=archive.pk)
        # Row by row, so that each stored file goes with its row (gallery.signals).
        for old in superseded:
            old.delete()
        _enqueue(archive.pk)
    elif archive.status == ArchiveStatus.FAILED and PhotoArchive.objects.filter(
        pk=archive.pk, status=ArchiveStatus.FAILED
    ).update(status=ArchiveStatus.PENDING, attempts=0, error=""):
        archive.refresh_from_db()
        _enqueue(archive.pk)
    return archive


def _enqueue(archive_id: int) -> None:
    # After the commit: the task must find the row, and reads storage outside any transaction.
    transaction.on_commit(
        lambda: async_task(BUILD_ARCHIVE, archive_id, task_name=f"archive-{archive_id}", group="archives")
    )


def build_archive(archive_id: int) -> str:
    """Queue task: build one archive; returns what happened (for the task log)."""
    claim = uuid.uuid4()
    now = timezone.now()
    claimable = Q(status=ArchiveStatus.PENDING) | Q(status=ArchiveStatus.BUILDING, started_at__lt=now - STALE_BUILD)
    claimed = PhotoArchive.objects.filter(claimable, pk=archive_id).update(
        status=ArchiveStatus.BUILDING, claim=claim, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return "nothing to do"
    archive = PhotoArchive.objects.select_related("event").get(pk=archive_id)
    try:
        name, size = _write(archive)
    except Exception as exc:
        logger.exception("[Archive] %s failed on attempt %d", archive_id, archive.attempts)
        return _retry_or_fail(archive, claim, f"{type(exc).__name__}: {exc}")
    finished = PhotoArchive.objects.filter(pk=archive_id, claim=claim, status=ArchiveStatus.BUILDING).update(
        status=ArchiveStatus.READY, file=name, size_bytes=size, finished_at=timezone.now(), error=""
    )
    if not finished:
        # Deleted (a newer photo set, the event) or reclaimed meanwhile: the file is nobody's.
        archive.file.storage.delete(name)
        return "dropped"
    logger.info("[Archive] %s ready: %d photos, %d bytes", archive_id, len(archive.photo_ids), size)
    return "ready"


def _write(archive: PhotoArchive) -> tuple[str, int]:
    """Write the ZIP to a temporary file, then store it; returns its storage name and size."""
    field = archive.file.field
    source_field = Photo._meta.get_field("original")
    entries = [
        ZipEntry(
            name=entry["name"],
            file=FieldFile(archive, source_field, entry["file"]),
            modified=datetime.fromisoformat(entry["modified"]),
            size=entry["size"],
        )
        for entry in archive.entries
    ]
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR or None) as target:
        for chunk in zip_stream(entries):
            target.write(chunk)
        size = target.tell()
        target.seek(0)
        name = field.storage.save(field.generate_filename(archive, "photos.zip"), File(target, name="photos.zip"))
    return name, size


def _retry_or_fail(archive: PhotoArchive, claim: uuid.UUID, reason: str) -> str:
    if archive.attempts >= ARCHIVE_MAX_ATTEMPTS:
        PhotoArchive.objects.filter(pk=archive.pk, claim=claim).update(
            status=ArchiveStatus.FAILED, error=reason, finished_at=timezone.now()
        )
        logger.error("[Archive] %s given up after %d attempts: %s", archive.pk, archive.attempts, reason)
        return "failed"
    if not PhotoArchive.objects.filter(pk=archive.pk, claim=claim).update(status=ArchiveStatus.PENDING, error=reason):
        return "dropped"
    due = timezone.now() + timedelta(
        seconds=scheduled_retry_delay(archive.attempts, ARCHIVE_RETRY_BASE_DELAY, cap=ARCHIVE_RETRY_MAX_DELAY)
    )
    schedule(
        BUILD_ARCHIVE,
        archive.pk,
        name=f"retry-archive-{archive.pk}-{archive.attempts}",
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule deletes itself after running
        next_run=due,
    )
    return "retrying"


def delete_old_archives() -> int:
    """Scheduled sweep: delete archives past ARCHIVE_TTL_HOURS and builds that never ran; returns the count."""
    now = timezone.now()
    old = PhotoArchive.objects.filter(
        Q(finished_at__lt=now - timedelta(hours=settings.ARCHIVE_TTL_HOURS))
        | Q(status=ArchiveStatus.PENDING, created_at__lt=now - STALE_PENDING)
        | Q(status=ArchiveStatus.BUILDING, started_at__lt=now - STALE_PENDING)
    )
    count = 0
    for archive in old.iterator():
        archive.delete()
        count += 1
    count += _delete_orphan_files(now - STALE_BUILD)
    if count:
        logger.info("[Archive] %d old archives deleted", count)
    return count


def _delete_orphan_files(cutoff: datetime) -> int:
    """Stored ZIPs with no row (a worker killed between storing and marking READY)."""
    storage = PhotoArchive._meta.get_field("file").storage  # type: ignore[attr-defined]
    if not storage.exists("events"):
        return 0
    removed = 0
    event_dirs, _ = storage.listdir("events")
    for event_dir in event_dirs:
        folder = f"events/{event_dir}/archives"
        if not storage.exists(folder):
            continue
        _, names = storage.listdir(folder)
        paths = {f"{folder}/{name}" for name in names}
        known = set(PhotoArchive.objects.filter(file__in=paths).values_list("file", flat=True))
        for name in paths - known:
            if storage.get_modified_time(name) < cutoff:
                storage.delete(name)
                removed += 1
    return removed


def current_archive(user: User, event: Event) -> PhotoArchive | None:
    """The guest's newest archive of `event`, if any (for the status page and its polling)."""
    return PhotoArchive.objects.filter(user=user, event=event).order_by("-created_at", "-pk").first()
