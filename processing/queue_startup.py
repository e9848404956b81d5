"""What a starting cluster does before it takes work: recover jobs and ensure schedules."""

from __future__ import annotations

import logging

from django.conf import settings
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from gallery.models import Photo, PhotoStatus
from processing.tasks import PROCESS_PHOTOS, recover_stalled_photos, requeue_missing

logger = logging.getLogger("processing.queue")

SCHEDULES = {
    "photoevent-recover-stalled": ("processing.tasks.recover_stalled_photos", 1),
    "photoevent-cleanup-orphans": ("processing.tasks.cleanup_orphan_files", 60),
    "photoevent-face-data-retention": ("processing.retention.purge_inactive_face_data", 24 * 60),
}


def ensure_schedules() -> None:
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1},
        )


def queued_photo_ids_in_broker() -> set[int]:
    """Photo ids that already have a task waiting in the broker (ORM or Redis).

    A task a cluster has taken but not acknowledged is not counted: its holder
    may be gone, and the broker would only redeliver it after `retry` seconds.
    """
    from django.utils import timezone
    from django_q.brokers import get_broker

    broker = get_broker()
    if "orm" in settings.Q_CLUSTER:
        waiting = OrmQ.objects.filter(key=broker.list_key, lock__lte=timezone.now())
        payloads = list(waiting.values_list("payload", flat=True))
    else:
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    ids: set[int] = set()
    for payload in payloads:
        try:
            task = SignedPackage.loads(payload)
        except Exception:  # noqa: BLE001 - an unreadable entry just does not count
            continue
        if task.get("func") == PROCESS_PHOTOS and task.get("args"):
            ids.update(int(i) for i in task["args"][0])
    return ids


def initialize_photo_queue() -> int:
    """Re-enqueue queued photos that have no queue entry; returns the pending count."""
    ensure_schedules()
    recover_stalled_photos()
    pending = list(Photo.objects.filter(status=PhotoStatus.QUEUED).values_list("pk", flat=True))
    requeue_missing(pending)
    logger.info("[Startup] Photo queue initialized with %d pending jobs", len(pending))
    return len(pending)
