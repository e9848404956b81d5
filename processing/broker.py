"""What the queue's broker holds: read without taking anything off it."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage

# The dotted name of the task that processes a batch of photos (processing.tasks.process_photos).
PROCESS_PHOTOS = "processing.tasks.process_photos"


def queued_photo_ids_in_broker() -> set[int]:
    """Photo ids that already have a task waiting in the broker (ORM or Redis).

    A task a cluster has taken but not acknowledged is not counted: its holder
    may be gone, and the broker would only redeliver it after `retry` seconds.
    """
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
