"""Retention of face data: attendees who stop using the site lose their selfies and matches.

`purge_inactive_face_data` runs daily as a django-q2 schedule (see
`processing.queue_startup.SCHEDULES`). "Inactive" means that
`AttendeeProfile.last_active_at` is older than FACE_DATA_RETENTION_DAYS; the
attendee pages and API refresh it at most once an hour.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from processing.backends import get_backend
from processing.backends.base import BackendError, FaceBackend
from processing.services import forget_attendee

logger = logging.getLogger("processing.retention")


def purge_inactive_face_data(now: datetime | None = None, backend: FaceBackend | None = None) -> int:
    """Task: delete the face data of attendees inactive for longer than the retention period.

    Returns how many attendees were purged. Consent stays recorded (the
    attendee did not withdraw it); a new selfie brings their photos back.
    """
    backend = backend or get_backend()
    cutoff = (now or timezone.now()) - timedelta(days=settings.FACE_DATA_RETENTION_DAYS)
    users = (
        get_user_model()
        .objects.filter(attendee__last_active_at__lt=cutoff)
        .filter(Q(selfies__isnull=False) | Q(matches__isnull=False))
        .distinct()
        .order_by("pk")
    )
    purged = 0
    for user in users:
        try:
            forget_attendee(user, backend, withdraw_consent=False)  # type: ignore[arg-type]
        except BackendError:
            # One unreachable backend call must not keep everyone else's data;
            # tomorrow's run tries this attendee again.
            logger.exception("Retention: could not forget the face data of user %s", user.pk)
            continue
        purged += 1
    logger.info(
        "Retention: purged the face data of %d attendees inactive for %d days",
        purged,
        settings.FACE_DATA_RETENTION_DAYS,
    )
    return purged
