"""Queue tasks. Job state lives on `Photo`; django-q2 only carries photo ids.

A task may be delivered twice (broker redelivery, a recovery sweep, a retry):
each photo is claimed with a conditional update, so only one worker processes
it at a time and a late duplicate finds nothing to do.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import ngettext
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from gallery.models import Event, Face, Photo, PhotoStatus
from processing.backends import get_backend
from processing.backends.base import BackendError, PermanentBackendError
from processing.backoff import scheduled_retry_delay
from processing.broker import PROCESS_PHOTOS, queued_photo_ids_in_broker
from processing.images import InvalidImage, fitted_size
from processing.people import regroup_event
from processing.pipeline import (
    LostClaim,
    PhotoGone,
    discard_renditions,
    process_photo,
    refresh_event_matches,
    rerender_photo,
)

logger = logging.getLogger("processing.queue")

FORGET_FACES = "processing.tasks.forget_backend_faces"
RERENDER_PHOTOS = "processing.tasks.rerender_photos"
FORGET_EVENT = "processing.tasks.forget_backend_event"
# A backend cleanup after a deletion is retried for about a day before it is given up (and logged).
CLEANUP_MAX_ATTEMPTS = 12
CLEANUP_BASE_DELAY = 30.0
CLEANUP_MAX_DELAY = 4 * 3600.0


def waiting_count() -> int:
    return Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING]).count()


def batch_sizes(count: int, batch_size: int, workers: int) -> list[int]:
    """Split `count` photos into batches of at most `batch_size`, shrinking towards the end.

    Each batch takes its share of half of what is left (remaining / (2 x
    workers), at most `batch_size`: "factoring", a guided self-scheduling that
    keeps half of the work back for balancing). A large upload goes in full
    batches, and its last batches are single photos: photos differ in cost by
    their number of faces, which nobody knows before they are processed, so
    the workers finish together only if none of them takes several photos at
    the end while the others wait. A small upload starts every worker at once
    (five photos with three workers go as five single photos).
    """
    if workers <= 1:
        # One worker has nobody to finish together with.
        return [min(batch_size, count - start) for start in range(0, count, batch_size)]
    sizes: list[int] = []
    remaining = count
    while remaining > 0:
        size = min(batch_size, -(-remaining // (2 * workers)))
        sizes.append(size)
        remaining -= size
    return sizes


def analysis_pixels(width: int, height: int, max_side: int) -> int:
    """Pixels of a photo once reduced to the analysis size, what its detection costs.

    Unknown dimensions count as the largest.
    """
    if width <= 0 or height <= 0:
        return max_side * max_side
    fitted_width, fitted_height = fitted_size(width, height, max_side)
    return fitted_width * fitted_height


def largest_first(photo_ids: Sequence[int], sizes: Mapping[int, tuple[int, int]]) -> list[int]:
    """The photos in decreasing order of analysis pixels, upload order among equals.

    Longest-processing-time-first: the last batches then hold the quickest
    photos, so the workers run out of work at about the same time instead of
    one finishing a large group photo while the others wait. A photo missing
    from `sizes` counts as the largest.
    """
    max_side = settings.PHOTO_ANALYSIS_MAX_SIDE
    order = {pk: position for position, pk in enumerate(photo_ids)}
    return sorted(photo_ids, key=lambda pk: (-analysis_pixels(*sizes.get(pk, (0, 0)), max_side), order[pk]))


def enqueue_photos(photo_ids: Sequence[int]) -> None:
    """Put photos on the queue in batches of at most PHOTO_QUEUE_BATCH_SIZE, spread over the workers, largest first."""
    photos = Photo.objects.filter(pk__in=list(photo_ids))
    sizes = {pk: (width, height) for pk, width, height in photos.values_list("pk", "width", "height")}
    ids = largest_first(list(photo_ids), sizes)
    start = 0
    for size in batch_sizes(len(ids), settings.PHOTO_QUEUE_BATCH_SIZE, settings.PHOTO_QUEUE_WORKERS):
        batch = ids[start : start + size]
        start += size
        async_task(PROCESS_PHOTOS, batch, task_name=f"photos-{batch[0]}-{batch[-1]}", group="photos")
    # Marked once the tasks exist: a process that dies before this leaves the
    # photos undispatched, for the next recovery sweep (which skips those the
    # broker holds), instead of looking dispatched for `retry` seconds.
    photos.update(dispatched_at=timezone.now())
    if ids:
        queue_size = waiting_count()
        for photo_id in ids:
            logger.info("[PhotoQueue] Job %s enqueued (queue size: %d)", photo_id, queue_size)


def worker_identity() -> str:
    """host:pid of this worker: staff can find it, and recovery can tell if it died."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_dead(identity: str) -> bool:
    """True only if `identity` is a process of this host that no longer exists."""
    host, _, pid = identity.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def process_photos(photo_ids: Sequence[int]) -> dict[int, str]:
    """Task: process a batch of photos; returns each photo's outcome."""
    worker = worker_identity()
    return {photo_id: run_photo(photo_id, worker) for photo_id in photo_ids}


def stale_after() -> timedelta:
    """How long a photo may stay in processing before its worker is presumed dead.

    django-q2 kills a task at its timeout, so past it nobody still works on the photo.
    """
    timeout = int(settings.Q_CLUSTER["timeout"])  # type: ignore[call-overload]
    return timedelta(seconds=timeout + 2)


def claim_photo(photo_id: int, worker: str) -> uuid.UUID | None:
    """Take a photo for processing; None if it is not due or another worker holds it."""
    claim = uuid.uuid4()
    now = timezone.now()
    due = Q(status=PhotoStatus.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    abandoned = Q(status=PhotoStatus.PROCESSING, started_at__lt=now - stale_after())
    claimed = Photo.objects.filter(due | abandoned, pk=photo_id).update(
        status=PhotoStatus.PROCESSING,
        claim=claim,
        worker=worker[:64],
        started_at=now,
        attempts=F("attempts") + 1,
        next_attempt_at=None,
    )
    return claim if claimed else None


def run_photo(photo_id: int, worker: str = "0") -> str:
    """Claim and process one photo; returns "done", "failed", "retrying" or "skipped".

    A photo deleted before or while it is processed is skipped and logged, and
    whatever was written for it is removed; the rest of the batch goes on.
    """
    claim = claim_photo(photo_id, worker)
    if claim is None:
        return "skipped"
    worker = worker.rpartition(":")[2]
    photo = Photo.objects.select_related("event").filter(pk=photo_id).first()
    if photo is None:
        logger.info("[PhotoWorker-%s] Job %s skipped: the photo was deleted", worker, photo_id)
        return "skipped"
    logger.info("[PhotoWorker-%s] Processing job %s: %s", worker, photo.pk, photo.filename)
    try:
        process_photo(photo, claim)
    except PhotoGone:
        logger.info("[PhotoWorker-%s] Job %s skipped: the photo was deleted while it was processed", worker, photo.pk)
        return "skipped"
    except LostClaim:
        return "skipped"
    except Exception as exc:
        if not Photo.objects.filter(pk=photo.pk).exists():
            # Deleted under our feet: its original went first, so reading it failed.
            discard_renditions(photo)
            logger.info("[PhotoWorker-%s] Job %s skipped: the photo was deleted (%s)", worker, photo.pk, exc)
            return "skipped"
        if isinstance(exc, InvalidImage | PermanentBackendError):
            fail_photo(photo, claim, str(exc))
            return "failed"
        # Timeouts, throttling, storage hiccups and anything unforeseen get the
        # bounded retry; the reason stays on the photo either way.
        logger.warning("[PhotoWorker-%s] Job %s error: %s", worker, photo.pk, exc, exc_info=True)
        return retry_or_fail(photo, claim, f"{type(exc).__name__}: {exc}")
    logger.info("[PhotoWorker-%s] Job %s completed: %s", worker, photo.pk, photo.original.name)
    return "done"


def fail_photo(photo: Photo, claim: uuid.UUID | None, reason: str) -> None:
    now = timezone.now()
    owned = Photo.objects.filter(pk=photo.pk, status=PhotoStatus.PROCESSING)
    if claim is not None:
        owned = owned.filter(claim=claim)
    owned.update(status=PhotoStatus.FAILED, error=reason[:2000], failed_at=now, finished_at=now, claim=None)
    logger.error("[PhotoWorker] Job %s failed: %s (%s)", photo.pk, photo.filename, reason)
    photo.event.bump_version()


def retry_delay(attempt: int) -> float:
    """Seconds before a photo's retry number `attempt`: the one backoff rule, never under half the base."""
    return scheduled_retry_delay(attempt, settings.PHOTO_RETRY_BASE_DELAY)


def retry_or_fail(photo: Photo, claim: uuid.UUID, reason: str) -> str:
    attempts = Photo.objects.filter(pk=photo.pk).values_list("attempts", flat=True).first()
    if attempts is None:
        logger.info("[PhotoQueue] Job %s not retried: the photo was deleted", photo.pk)
        return "skipped"
    photo.attempts = attempts
    if photo.attempts >= settings.PHOTO_QUEUE_MAX_RETRIES:
        # Stored on the photo and shown in the studio, in the default language (no request here).
        gave_up = ngettext("gave up after %(count)d attempt", "gave up after %(count)d attempts", photo.attempts)
        fail_photo(photo, claim, f"{reason} ({gave_up % {'count': photo.attempts}})")
        return "failed"
    due = timezone.now() + timedelta(seconds=retry_delay(photo.attempts))
    requeued = Photo.objects.filter(pk=photo.pk, claim=claim, status=PhotoStatus.PROCESSING).update(
        status=PhotoStatus.QUEUED, error=reason[:2000], next_attempt_at=due, claim=None
    )
    if requeued:
        schedule(
            PROCESS_PHOTOS,
            [photo.pk],
            name=f"retry-photo-{photo.pk}-{photo.attempts}",
            schedule_type=Schedule.ONCE,
            repeats=-1,  # a ONCE schedule deletes itself after running
            next_run=due,
        )
        logger.warning("[PhotoQueue] Job %s will retry at %s: %s", photo.pk, due.isoformat(), reason)
    return "retrying"


def recover_stalled_photos() -> int:
    """Task: put back on the queue the photos no live task will process; returns how many.

    That is photos held by a dead worker, and queued photos whose task was
    lost (a Redis broker does not redeliver) or whose retry schedule is overdue.
    """
    now = timezone.now()
    recovered = []
    for pk, worker, started_at in Photo.objects.filter(status=PhotoStatus.PROCESSING).values_list(
        "pk", "worker", "started_at"
    ):
        if not (worker_is_dead(worker) or (started_at and started_at < now - stale_after())):
            continue
        if Photo.objects.filter(pk=pk, status=PhotoStatus.PROCESSING, worker=worker, started_at=started_at).update(
            status=PhotoStatus.QUEUED, claim=None, error="Recovered after its worker stopped"
        ):
            recovered.append(pk)
    if recovered:
        logger.warning("[PhotoQueue] Recovered %d jobs from stopped workers", len(recovered))
    # Past `retry` seconds a dispatched task has run, been redelivered, or been
    # lost with its worker (a Redis broker does not redeliver).
    grace = now - timedelta(seconds=int(settings.Q_CLUSTER["retry"]))  # type: ignore[call-overload]
    candidates = Photo.objects.filter(status=PhotoStatus.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    candidates = candidates.filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=grace))
    return requeue_missing(list(candidates.values_list("pk", flat=True)) + recovered)


def requeue_missing(photo_ids: list[int]) -> int:
    """Enqueue those of `photo_ids` that have no entry in the broker; returns how many."""
    in_broker = queued_photo_ids_in_broker()
    missing = sorted({pk for pk in photo_ids if pk not in in_broker})
    enqueue_photos(missing)
    return len(missing)


def cleanup_orphan_files() -> int:
    """Task: delete stale upload temp files and stored files no photo refers to."""
    removed = 0
    cutoff = timezone.now() - timedelta(hours=1)
    temp_dir = Path(settings.FILE_UPLOAD_TEMP_DIR)
    if temp_dir.is_dir():
        for path in temp_dir.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff.timestamp():
                path.unlink(missing_ok=True)
                removed += 1
    if default_storage.exists("events"):
        event_dirs, _ = default_storage.listdir("events")
        for event_dir in event_dirs:
            for kind in ("originals", "thumbs", "web", "watermarked"):
                folder = f"events/{event_dir}/{kind}"
                if not default_storage.exists(folder):
                    continue
                _, names = default_storage.listdir(folder)
                paths = {f"{folder}/{name}" for name in names}
                field = {"originals": "original", "thumbs": "thumbnail", "web": "web", "watermarked": "watermarked"}[
                    kind
                ]
                known = set(Photo.objects.filter(**{f"{field}__in": paths}).values_list(field, flat=True))
                for name in paths - known:
                    if default_storage.get_modified_time(name) < cutoff:
                        default_storage.delete(name)
                        removed += 1
    if removed:
        logger.info("[PhotoQueue] Removed %d orphaned files", removed)
    return removed


def refresh_event(event_id: int) -> None:
    """Task: regroup an event's faces, then recompute every match (see pipeline.schedule_event_refresh).

    Grouping comes first, so that a group the photographer hid leaves the matches at once.
    """
    # Photos finishing from now on schedule the next pass.
    cache.delete(f"event-refresh:{event_id}")
    event = Event.objects.filter(pk=event_id).first()
    if event is not None:
        regroup_event(event)
        refresh_event_matches(event)


def enqueue_rerender(event_id: int) -> int:
    """Queue the re-rendering of the event's finished photos whose renditions predate its watermark.

    Batches of PHOTO_QUEUE_BATCH_SIZE; returns how many photos were queued.
    Photos still in processing render the new watermark themselves.
    """
    version = Event.objects.filter(pk=event_id).values_list("watermark_version", flat=True).first()
    if version is None:
        return 0
    stale = Photo.objects.filter(event_id=event_id, status=PhotoStatus.DONE).exclude(watermark_version=version)
    ids = list(stale.order_by("pk").values_list("pk", flat=True))
    batch_size = settings.PHOTO_QUEUE_BATCH_SIZE
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        async_task(RERENDER_PHOTOS, batch, task_name=f"rerender-{batch[0]}-{batch[-1]}", group="rerender")
    if ids:
        logger.info("[PhotoQueue] %d photos of event %s queued for a new watermark", len(ids), event_id)
    return len(ids)


def rerender_photos(photo_ids: Sequence[int]) -> dict[int, str]:
    """Task: re-render the web and watermarked copies of photos (never their faces); idempotent."""
    return {photo_id: rerender_photo(photo_id) for photo_id in photo_ids}


def requeue_photo(photo: Photo, *, only_failed: bool) -> bool:
    """Put a failed (or, with only_failed=False, a finished) photo back on the queue."""
    allowed = [PhotoStatus.FAILED] if only_failed else [PhotoStatus.FAILED, PhotoStatus.DONE]
    updated = Photo.objects.filter(pk=photo.pk, status__in=allowed).update(
        status=PhotoStatus.QUEUED,
        attempts=0,
        error="",
        failed_at=None,
        next_attempt_at=None,
        enqueued_at=timezone.now(),
    )
    if updated:
        enqueue_photos([photo.pk])
    return bool(updated)


def forget_faces_later(event_id: int, external_ids: Sequence[str], attempt: int = 1) -> None:
    """Have the queue delete faces of deleted rows from the backend, retrying with backoff."""
    if external_ids:
        _retry_cleanup(FORGET_FACES, attempt, event_id, list(external_ids))


def forget_event_later(event_id: int, attempt: int = 1) -> None:
    """Have the queue delete everything the backend stores for a deleted event, retrying with backoff."""
    _retry_cleanup(FORGET_EVENT, attempt, event_id)


def _retry_cleanup(func: str, attempt: int, *args: object) -> None:
    if attempt > CLEANUP_MAX_ATTEMPTS:
        logger.error("[PhotoQueue] Gave up %s%s after %d attempts", func, args, CLEANUP_MAX_ATTEMPTS)
        return
    due = timezone.now() + timedelta(seconds=scheduled_retry_delay(attempt, CLEANUP_BASE_DELAY, cap=CLEANUP_MAX_DELAY))
    schedule(
        func,
        *args,
        attempt,
        name=f"cleanup-{func.rpartition('.')[2]}-{args[0]}-{uuid.uuid4().hex[:12]}",
        schedule_type=Schedule.ONCE,
        repeats=-1,  # a ONCE schedule deletes itself after running
        next_run=due,
    )
    logger.warning("[PhotoQueue] Backend cleanup %s%s will run again at %s", func, args, due.isoformat())


def forget_backend_faces(event_id: int, external_ids: list[str], attempt: int = 1) -> None:
    """Task: delete from the backend faces whose rows are already gone (a failed cleanup, again)."""
    faces = [Face(event_id=event_id, external_id=external_id) for external_id in external_ids]
    try:
        get_backend().forget_faces(Event(pk=event_id), faces)
    except BackendError:
        logger.warning("[PhotoQueue] Backend cleanup of %d faces of event %s failed", len(faces), event_id)
        forget_faces_later(event_id, external_ids, attempt + 1)


def forget_backend_event(event_id: int, attempt: int = 1) -> None:
    """Task: delete everything the backend stores for an event already deleted (a failed cleanup, again)."""
    try:
        get_backend().forget_event(Event(pk=event_id))
    except BackendError:
        logger.warning("[PhotoQueue] Backend cleanup of event %s failed", event_id)
        forget_event_later(event_id, attempt + 1)
