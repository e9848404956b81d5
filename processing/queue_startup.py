"""What a starting cluster does before it takes work: recover jobs and ensure schedules."""

from __future__ import annotations

import logging

from django.conf import settings
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from gallery.models import Photo, PhotoStatus
from processing.tasks import PROCESS_PHOTOS, enqueue_photos, recover_stalled_photos

logger = logging.getLogger("processing.queue")

SCHEDULES = {
    "photoevent-recover-stalled": ("processing.tasks.recover_stalled_photos", 1),
    "photoevent-cleanup-orphans": ("processing.tasks.cleanup_orphan_files", 60),
}


def ensure_schedules() -> None:
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )


def queued_photo_ids_in_broker() -> set[int] | None:
    """Photo ids that already have a queue entry, or None if the broker cannot be read."""
    if "orm" not in settings.Q_CLUSTER:
        return None
    ids: set[int] = set()
    for entry in OrmQ.objects.all():
        try:
            task = SignedPackage.loads(entry.payload)
        except Exception:  # noqa: BLE001 - an unreadable entry just does not count
            continue
        if task.get("func") == PROCESS_PHOTOS and task.get("args"):
            ids.update(int(i) for i in task["args"][0])
    return ids


def initialize_photo_queue() -> int:
    """Re-enqueue queued photos that lost their queue entry; returns the pending count."""
    ensure_schedules()
    recover_stalled_photos()
    pending = list(Photo.objects.filter(status=PhotoStatus.QUEUED).order_by("enqueued_at").values_list("pk", flat=True))
    in_broker = queued_photo_ids_in_broker()
    # Without a readable broker every queued photo is re-sent; the claim makes
    # the duplicates no-ops.
    missing = [pk for pk in pending if in_broker is None or pk not in in_broker]
    enqueue_photos(missing)
    logger.info("[Startup] Photo queue initialized with %d pending jobs", len(pending))
    return len(pending)
