"""What a starting cluster does before it takes work: recover jobs and ensure schedules."""

from __future__ import annotations

import logging

from django_q.models import Schedule

from gallery.models import Photo, PhotoStatus
from processing.tasks import recover_stalled_photos, requeue_missing

logger = logging.getLogger("processing.queue")

SCHEDULES = {
    "photoevent-recover-stalled": ("processing.tasks.recover_stalled_photos", 1),
    "photoevent-cleanup-orphans": ("processing.tasks.cleanup_orphan_files", 60),
    "photoevent-face-data-retention": ("processing.retention.purge_inactive_face_data", 24 * 60),
    "photoevent-sweep-orphan-faces": ("processing.sweep.sweep_orphan_faces", 30),
    "photoevent-delete-old-archives": ("processing.archives.delete_old_archives", 60),
}


def ensure_schedules() -> None:
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )


def initialize_photo_queue() -> int:
    """Re-enqueue queued photos that have no queue entry; returns the pending count."""
    ensure_schedules()
    recover_stalled_photos()
    pending = list(Photo.objects.filter(status=PhotoStatus.QUEUED).values_list("pk", flat=True))
    requeue_missing(pending)
    logger.info("[Startup] Photo queue initialized with %d pending jobs", len(pending))
    return len(pending)
