"""The periodic sweep of Rekognition faces that no row of ours refers to.

A job that dies between IndexFaces and saving its rows leaves faces in the
event's collection that nothing will ever delete, and that AWS bills every
month. The sweep lists each collection of ours (ListCollections, ListFaces,
both paginated and free) and deletes the faces that neither a `Face` row
(``external_id``) nor a `RekognitionSelfieFace` row (``face_id``) knows, once
they have been orphans for ORPHAN_MIN_AGE.

Why "orphaned for an hour" and not "indexed an hour ago": ListFaces gives no
time for a face, and a face without a row has no time of ours either. A face
also legitimately has no row for a while: a photo job holds it between
IndexFaces and saving (matching runs in between), and a selfie between its
IndexFaces and its `RekognitionSelfieFace` row. So the sweep notes when it
first saw each orphan, in the shared cache (Redis, or the disk cache every
process of the machine shares), and deletes only faces it has seen orphaned
for at least an hour and that still have no row just before the deletion.
Losing that note (cache eviction or flush) only delays a deletion by an
hour; it never deletes a face too early. Users (ListUsers) of attendees with
no selfie indexed in the event are deleted by the same rule, and a
collection whose event is gone is emptied the same way, then deleted.

Scheduled every SWEEP_INTERVAL_MINUTES by the queue (processing.queue_startup);
the faces it deleted are counted in the face-service metrics as the operation
``SweepOrphanFaces`` (``faces_deleted``), shown by /api/admin/aws-metrics.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from gallery.models import Event, Face
from processing.backends import get_backend
from processing.backends.rekognition import RekognitionBackend, attendee_of
from processing.metrics import ORPHAN_SWEEP, record_call
from processing.models import RekognitionSelfieFace

logger = logging.getLogger("processing.rekognition")

ORPHAN_MIN_AGE = timedelta(hours=1)
SWEEP_INTERVAL_MINUTES = 30
# Long enough to outlive several sweeps; a lost note only delays a deletion.
NOTE_SECONDS = 24 * 3600


def sweep_orphan_faces(now: datetime | None = None, backend: RekognitionBackend | None = None) -> int:
    """Task: delete collection faces orphaned for ORPHAN_MIN_AGE; returns how many were deleted.

    Does nothing (and calls nothing) unless the face backend is Rekognition.
    """
    if backend is None:
        configured = get_backend()
        if not isinstance(configured, RekognitionBackend):
            return 0
        backend = configured
    now = now or timezone.now()
    deleted = 0
    for collection in backend.list_collections():
        event_id = backend.event_of(collection)
        if event_id is not None:
            deleted += sweep_collection(backend, event_id, now)
    if deleted:
        logger.info("Orphan sweep deleted %d Rekognition faces", deleted)
    return deleted


def known_face_ids(event_id: int) -> set[str]:
    """The FaceIds of the event that a row of ours refers to (photo faces and selfie faces)."""
    photo_faces = Face.objects.filter(event_id=event_id).exclude(external_id="").values_list("external_id", flat=True)
    selfie_faces = (
        RekognitionSelfieFace.objects.filter(event_id=event_id).exclude(face_id="").values_list("face_id", flat=True)
    )
    return set(photo_faces) | set(selfie_faces)


def _note_key(backend: RekognitionBackend, event_id: int) -> str:
    return f"rekognition-orphans:{backend.collection_id(event_id)}"


def sweep_collection(backend: RekognitionBackend, event_id: int, now: datetime) -> int:
    """Sweep one event's collection; returns how many orphan faces were deleted."""
    listed = backend.list_faces(event_id)
    orphans = set(listed) - known_face_ids(event_id)
    key = _note_key(backend, event_id)
    earlier: dict[str, float] = cache.get(key) or {}
    stamp = now.timestamp()
    # When each current orphan was first seen as one; faces that gained a row drop out.
    first_seen = {face_id: earlier.get(face_id, stamp) for face_id in orphans}
    due = {face_id for face_id, seen in first_seen.items() if stamp - seen >= ORPHAN_MIN_AGE.total_seconds()}
    deleted = 0
    if due:
        # A row may have been saved since the listing: check again just before deleting.
        due -= known_face_ids(event_id)
        deleted = backend.delete_faces(event_id, due)
        if deleted:
            record_call(backend.name, ORPHAN_SWEEP, event_id, faces_deleted=deleted)
        for face_id in due:
            first_seen.pop(face_id, None)
    if first_seen:
        cache.set(key, first_seen, NOTE_SECONDS)
    else:
        cache.delete(key)
    _sweep_users(backend, event_id, now)
    if not Event.objects.filter(pk=event_id).exists() and len(listed) == deleted:
        # The event is gone and so is every face of its collection.
        backend.forget_event(Event(pk=event_id))
    return deleted


def _sweep_users(backend: RekognitionBackend, event_id: int, now: datetime) -> None:
    """Delete users orphaned for ORPHAN_MIN_AGE: attendees with no selfie indexed in the event.

    A user is created with the selfie's first association, just before its
    `RekognitionSelfieFace` row: the same hour of grace covers that window.
    Deleting a user keeps its faces (they are disassociated).
    """
    indexed = set(RekognitionSelfieFace.objects.filter(event_id=event_id).values_list("selfie__user_id", flat=True))
    orphans = {
        attendee for user in backend.list_users(event_id) if (attendee := attendee_of(user)) is not None
    } - indexed
    key = f"{_note_key(backend, event_id)}:users"
    earlier: dict[int, float] = cache.get(key) or {}
    stamp = now.timestamp()
    first_seen = {attendee: earlier.get(attendee, stamp) for attendee in orphans}
    due = {attendee for attendee, seen in first_seen.items() if stamp - seen >= ORPHAN_MIN_AGE.total_seconds()}
    if due:
        due -= set(RekognitionSelfieFace.objects.filter(event_id=event_id).values_list("selfie__user_id", flat=True))
    for attendee in sorted(due):
        backend.delete_user(event_id, attendee)
        first_seen.pop(attendee, None)
    if due:
        logger.info("Orphan sweep deleted %d Rekognition users in event %s", len(due), event_id)
    if first_seen:
        cache.set(key, first_seen, NOTE_SECONDS)
    else:
        cache.delete(key)
