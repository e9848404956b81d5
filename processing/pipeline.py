"""The processing pipeline: what happens to a photo and to a selfie.

A photo goes through `process_photo` exactly in this order:

1. open the original from storage with its EXIF orientation applied;
2. decode it at analysis size (longest side PHOTO_ANALYSIS_MAX_SIDE);
3. write the thumbnail and the web-size copy;
4. let the face backend detect and describe (or index) its faces;
5. in one transaction, replace the photo's faces and matches and mark it done.

Every step can run again for the same photo and leaves one set of faces,
renditions and matches, so a redelivered or retried task does no harm.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gallery.models import (
    AttendeeProfile,
    Event,
    Face,
    Match,
    Membership,
    Photo,
    PhotoStatus,
    Selfie,
    forget_cached_events,
)
from processing.backends import get_backend
from processing.backends.base import DetectedFace, FaceBackend, FaceMatch, Reference
from processing.images import jpeg_bytes, open_upright

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile
    from PIL import Image

logger = logging.getLogger("processing.pipeline")

SELFIE_MAX_SIDE = 1024


class LostClaim(Exception):
    """Another worker took the photo over; this run's results are discarded."""


def process_photo(photo: Photo, claim: uuid.UUID, backend: FaceBackend | None = None) -> None:
    backend = backend or get_backend()
    started = time.monotonic()
    with photo.original.open("rb") as original:
        image = open_upright(original, settings.PHOTO_ANALYSIS_MAX_SIDE)
    thumbnail_name = _save_rendition(photo, "thumbs", jpeg_bytes(image, settings.PHOTO_THUMBNAIL_MAX_SIDE, 80))
    web_name = _save_rendition(photo, "web", jpeg_bytes(image, settings.PHOTO_WEB_MAX_SIDE))
    result = backend.index_photo(photo, image)
    with transaction.atomic():
        # Lock the row so that a worker that lost its claim cannot interleave.
        current = Photo.objects.select_for_update().get(pk=photo.pk)
        if current.claim != claim or current.status != PhotoStatus.PROCESSING:
            raise LostClaim(f"photo {photo.pk} was claimed by another worker")
        stale_faces = list(current.faces.all())
        current.faces.all().delete()
        faces = _store_faces(current, image, result.faces)
        references = event_references(current.event)
        matches = backend.match_faces(current.event, faces, references)
        _store_matches(current.event, matches, replace_photo=current)
        current.thumbnail.name = thumbnail_name
        current.web.name = web_name
        current.face_count = len(faces)
        current.unindexed_reasons = result.unindexed_reasons
        current.status = PhotoStatus.DONE
        current.error = ""
        current.finished_at = timezone.now()
        current.processing_ms = int((time.monotonic() - started) * 1000)
        current.claim = None
        current.save()
        current.event.bump_version()
    if stale_faces:
        backend.forget_faces(photo.event, [f for f in stale_faces if f.external_id not in _ids(faces)])
    if references:
        schedule_event_refresh(photo.event_id)
    photo.refresh_from_db()


def _ids(faces: Iterable[Face]) -> set[str]:
    return {face.external_id for face in faces if face.external_id}


def _save_rendition(photo: Photo, kind: str, data: bytes) -> str:
    name = f"events/{photo.event_id}/{kind}/{photo.job_id.hex}.jpg"
    # Deterministic names keep a re-run from leaving orphans behind.
    if default_storage.exists(name):
        default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


def _store_faces(photo: Photo, image: Image.Image, detected: Sequence[DetectedFace]) -> list[Face]:
    width, height = image.size
    faces = [
        Face(
            photo=photo,
            event_id=photo.event_id,
            left=d.left / width,
            top=d.top / height,
            width=d.width / width,
            height=d.height / height,
            confidence=d.confidence,
            embedding=d.embedding.tobytes() if d.embedding is not None else None,
            external_id=d.external_id,
        )
        for d in detected
    ]
    return Face.objects.bulk_create(faces)


def event_references(event: Event, user_ids: Iterable[int] | None = None) -> list[Reference]:
    """The face references of the event's consenting members who have a selfie."""
    members = Membership.objects.filter(event=event, user__attendee__face_consent_at__isnull=False)
    if user_ids is not None:
        members = members.filter(user_id__in=list(user_ids))
    member_ids = list(members.values_list("user_id", flat=True))
    by_user: dict[int, list[Selfie]] = {}
    for selfie in Selfie.objects.filter(user_id__in=member_ids).exclude(embedding=None, external_id=""):
        by_user.setdefault(selfie.user_id, []).append(selfie)
    return [Reference(user_id=user_id, selfies=selfies) for user_id, selfies in sorted(by_user.items())]


def _store_matches(
    event: Event,
    matches: Sequence[FaceMatch],
    *,
    replace_photo: Photo | None = None,
    replace_user_id: int | None = None,
) -> None:
    if replace_photo is not None:
        Match.objects.filter(photo=replace_photo).delete()
    if replace_user_id is not None:
        Match.objects.filter(event=event, user_id=replace_user_id).delete()
    best = _best_per_photo(matches)
    Match.objects.bulk_create(
        Match(
            user_id=m.user_id,
            event=event,
            photo_id=m.photo_id,
            face_id=m.face_id,
            similarity=round(m.similarity, 4),
        )
        for m in best.values()
    )


def _best_per_photo(matches: Iterable[FaceMatch]) -> dict[tuple[int, int], FaceMatch]:
    best: dict[tuple[int, int], FaceMatch] = {}
    for match in matches:
        key = (match.user_id, match.photo_id)
        if key not in best or match.similarity > best[key].similarity:
            best[key] = match
    return best


def refresh_event_matches(
    event: Event, backend: FaceBackend | None = None, users: Collection[int] | None = None
) -> bool:
    """Recompute the matches of the event (of `users` only, if given) at once, writing only what changed.

    Returns False, doing nothing, for backends that only match incrementally.
    """
    backend = backend or get_backend()
    matches = backend.match_event(event, event_references(event), users)
    if matches is None:
        return False
    wanted = _best_per_photo(matches)
    rows = Match.objects.select_for_update().filter(event=event)
    if users is not None:
        rows = rows.filter(user_id__in=list(users))
    with transaction.atomic():
        existing = {(m.user_id, m.photo_id): m for m in rows}
        stale = [m.pk for key, m in existing.items() if key not in wanted]
        changed = []
        for key, match in existing.items():
            new = wanted.get(key)
            if new and (match.face_id != new.face_id or match.similarity != round(new.similarity, 4)):
                match.face_id, match.similarity = new.face_id, round(new.similarity, 4)
                changed.append(match)
        added = [
            Match(
                user_id=m.user_id,
                event=event,
                photo_id=m.photo_id,
                face_id=m.face_id,
                similarity=round(m.similarity, 4),
            )
            for key, m in wanted.items()
            if key not in existing
        ]
        Match.objects.filter(pk__in=stale).delete()
        Match.objects.bulk_update(changed, ["face", "similarity"])
        Match.objects.bulk_create(added)
        if stale or changed or added:
            event.bump_version()
    return True


def schedule_event_refresh(event_id: int) -> None:
    """Refresh the event's matches once photos stop arriving for a moment.

    Per-photo matching already sees every earlier face; the event-wide pass
    makes the result independent of the order photos arrived in. One pass per
    EVENT_REFRESH_DELAY seconds at most.
    """
    from django.core.cache import cache
    from django_q.models import Schedule
    from django_q.tasks import schedule

    delay = settings.EVENT_REFRESH_DELAY
    if cache.add(f"event-refresh:{event_id}", 1, timeout=delay):
        schedule(
            "processing.tasks.refresh_event",
            event_id,
            name=f"refresh-event-{event_id}-{time.time_ns()}",
            schedule_type=Schedule.ONCE,
            repeats=-1,  # a ONCE schedule deletes itself after running
            next_run=timezone.now() + timedelta(seconds=delay),
        )


def refresh_member_matches(user: User, event: Event, backend: FaceBackend | None = None) -> int:
    """Bring one attendee's matches in one event up to date; returns the number of photos."""
    backend = backend or get_backend()
    if refresh_event_matches(event, backend, users=[user.pk]):
        # A new reference can take faces from a look-alike attendee: the
        # event-wide pass brings the others up to date shortly.
        schedule_event_refresh(event.pk)
        return Match.objects.filter(event=event, user=user).count()
    references = event_references(event, [user.pk])
    matches = backend.match_reference(event, references[0]) if references else []
    with transaction.atomic():
        _store_matches(event, matches, replace_user_id=user.pk)
        event.bump_version()
    return len({m.photo_id for m in matches})


def refresh_user_matches(user: User, backend: FaceBackend | None = None) -> dict[int, int]:
    """Recompute the attendee's matches in every event they joined."""
    events = Event.objects.filter(memberships__user=user)
    return {event.pk: refresh_member_matches(user, event, backend) for event in events}


def enrol_selfie(user: User, upload: UploadedFile, backend: FaceBackend | None = None) -> tuple[Selfie, int]:
    """Store a new selfie as the attendee's reference and refresh their matches.

    Raises `InvalidImage` or `NoFaceError`; nothing is stored then.
    """
    backend = backend or get_backend()
    image = open_upright(upload, SELFIE_MAX_SIDE)
    selfie = Selfie(user=user)
    face, faces_found = backend.enrol_selfie(selfie, image)
    previous = list(Selfie.objects.filter(user=user))
    selfie.embedding = face.embedding.tobytes() if face.embedding is not None else None
    selfie.external_id = face.external_id
    selfie.faces_found = faces_found
    selfie.image.save("selfie.jpg", ContentFile(jpeg_bytes(image, SELFIE_MAX_SIDE)), save=True)
    for old in previous:
        delete_selfie(old, backend)
    AttendeeProfile.objects.filter(user=user).update(face_version=F("face_version") + 1)
    refresh_user_matches(user, backend)
    return selfie, faces_found


def delete_selfie(selfie: Selfie, backend: FaceBackend | None = None) -> None:
    """Delete a selfie: the backend's copy of its face first, then the file and the row."""
    backend = backend or get_backend()
    backend.forget_selfie(selfie)
    if selfie.image:
        selfie.image.delete(save=False)
    selfie.delete()


@dataclass(frozen=True)
class ForgottenFaceData:
    """What `forget_attendee` deleted, for the confirmation page and the logs."""

    selfies: int
    templates: int
    matches: int
    events: int


def forget_attendee(
    user: User, backend: FaceBackend | None = None, *, withdraw_consent: bool = True
) -> ForgottenFaceData:
    """Delete an attendee's face data: every selfie (file, template, backend record) and every match.

    The backend forgets each selfie before its row goes, so a backend failure
    (raised as `BackendError`) leaves the rest in place to be deleted by a retry.
    Event photos are not the attendee's and stay; only the link to them goes.
    """
    backend = backend or get_backend()
    selfies = list(Selfie.objects.filter(user=user))
    templates = sum(1 for s in selfies if s.embedding is not None or s.external_id)
    for selfie in selfies:
        delete_selfie(selfie, backend)
    with transaction.atomic():
        matches = Match.objects.filter(user=user)
        event_ids = set(matches.values_list("event_id", flat=True))
        _, deleted = matches.delete()
        changes: dict[str, object] = {"face_version": F("face_version") + 1}
        if withdraw_consent:
            changes["face_consent_at"] = None
        AttendeeProfile.objects.filter(user=user).update(**changes)
        # Cached photo lists are keyed on the event's version.
        Event.objects.filter(pk__in=event_ids).update(content_version=F("content_version") + 1)
        forget_cached_events(*event_ids)
    forgotten = ForgottenFaceData(
        selfies=len(selfies),
        templates=templates,
        matches=deleted.get(Match._meta.label, 0),
        events=len(event_ids),
    )
    logger.info("Forgot the face data of user %s: %s", user.pk, forgotten)
    return forgotten
