"""The processing pipeline: what happens to a photo and to a selfie.

A photo goes through `process_photo` exactly in this order:

1. open the original from storage with its EXIF orientation applied;
2. decode it at analysis size (longest side PHOTO_ANALYSIS_MAX_SIDE);
3. write the thumbnail, the web-size copy and, when the event has a
   watermark, the full-size watermarked copy guests download (the web copy
   carries the watermark too; the thumbnail stays clean);
4. let the face backend detect and describe (or index) its faces, then say
   which of these new faces belong to which attendee (`match_faces`, which
   names faces by position because they have no rows yet);
5. in one short transaction, check that this run still holds the photo's claim
   (a conditional update on claim and status), replace the photo's faces and
   matches and mark it done; attendees' corrections follow the new faces and
   decide over the backend's matches (`processing.corrections`);
6. after the commit, tell the backend to forget the faces the new ones replaced.

The contract every function here keeps:

- No face-backend or network call runs inside a database transaction. Backend
  calls come first; a short transaction then re-checks what they depended on
  (the claim, the faces still present) and writes. The test suite runs every
  path with a backend that fails when it is called inside `atomic()`.
- Every step can run again for the same photo and leaves one set of faces,
  renditions and matches, so a redelivered or retried task does no harm.
- A photo deleted while it is processed is not an error: `PhotoGone` is raised,
  and the renditions and backend faces written for it are removed at once.
- A watermark change re-renders through `rerender_photo`, which rewrites the
  web and watermarked copies only: no face detection, no change to faces or
  matches. Each photo records the watermark version its renditions carry, so
  a re-render that already happened does nothing.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule
from PIL import Image

from gallery.models import (
    AttendeeProfile,
    Event,
    Face,
    Match,
    MatchCorrection,
    Photo,
    PhotoStatus,
    Selfie,
    forget_cached_events,
)
from processing.alerts import schedule_match_alerts
from processing.backends import get_backend
from processing.backends.base import DetectedFace, FaceBackend, FaceMatch, IndexResult, NewFaceMatch
from processing.corrections import enforce_corrections, reattach_corrections
from processing.images import fit_within, jpeg_bytes, open_upright
from processing.people import carry_over_groups
from processing.references import event_references
from processing.watermark import Watermark, apply_watermark, event_watermark

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile

__all__ = [
    "ForgottenFaceData",
    "LostClaim",
    "PhotoGone",
    "delete_selfie",
    "discard_renditions",
    "enrol_selfie",
    "event_references",
    "forget_attendee",
    "process_photo",
    "refresh_event_matches",
    "refresh_member_matches",
    "refresh_user_matches",
    "rerender_photo",
    "schedule_event_refresh",
]

logger = logging.getLogger("processing.pipeline")

SELFIE_MAX_SIDE = 1024
RENDITION_KINDS = ("thumbs", "web", "watermarked")
WATERMARKED_JPEG_QUALITY = 90
RERENDER_ATTEMPTS = 3


class LostClaim(Exception):
    """Another worker took the photo over; this run's results are discarded."""


class PhotoGone(LostClaim):
    """The photo was deleted while it was processed; what this run wrote for it is removed."""


def process_photo(photo: Photo, claim: uuid.UUID, backend: FaceBackend | None = None) -> None:
    """Process one claimed photo (see the module docstring); raises `LostClaim` or `PhotoGone`."""
    backend = backend or get_backend()
    started = time.monotonic()
    watermark_version = photo.event.watermark_version
    mark = event_watermark(photo.event)
    with photo.original.open("rb") as original:
        image = open_upright(original, settings.PHOTO_ANALYSIS_MAX_SIDE)
    thumbnail_name = _save_rendition(photo, "thumbs", jpeg_bytes(image, settings.PHOTO_THUMBNAIL_MAX_SIDE, 80))
    web_name, watermarked_name = _write_marked_renditions(photo, image, mark)
    renditions = Renditions(thumbnail_name, web_name, watermarked_name, watermark_version)
    # The face work, backend calls included, happens before any transaction.
    result = backend.index_photo(photo, image)
    references = event_references(photo.event)
    new_matches = backend.match_faces(photo.event, photo, result.faces, references) if references else []
    try:
        faces, stale_faces = _finish(photo, claim, image, result, new_matches, renditions, started)
    except PhotoGone:
        discard_renditions(photo)
        _forget_detected(backend, photo, result.faces)
        raise
    replaced = _ids(faces)
    forgotten = [face for face in stale_faces if face.external_id and face.external_id not in replaced]
    if forgotten:
        backend.forget_faces(photo.event, forgotten)
    if references or result.faces:
        # The refresh also regroups the event's faces for the people view.
        schedule_event_refresh(photo.event_id)
    # The watermark changed while this photo was processed: the re-render of
    # the event's photos may have passed it by.
    current = Event.objects.filter(pk=photo.event_id).values_list("watermark_version", flat=True).first()
    if current is not None and current != watermark_version:
        rerender_photo(photo.pk)


@dataclass(frozen=True)
class Renditions:
    """The stored names of a photo's renditions, and the watermark version they carry."""

    thumbnail: str
    web: str
    watermarked: str
    watermark_version: int


def _write_marked_renditions(photo: Photo, image: Image.Image, mark: Watermark | None) -> tuple[str, str]:
    """Write the web copy (watermarked if `mark`) and the full-size watermarked copy; returns their names.

    Without a watermark there is no watermarked copy: its name is "" and an old one is deleted.
    """
    # A mark is drawn on a new image at the web copy's size; without one the
    # analysis image is encoded as it is (jpeg_bytes never changes its input).
    web = apply_watermark(fit_within(image, settings.PHOTO_WEB_MAX_SIDE), mark)
    web_jpeg = jpeg_bytes(web, settings.PHOTO_WEB_MAX_SIDE, optimize=False)
    web_name = _save_rendition(photo, "web", web_jpeg)
    if mark is None:
        name = _rendition_name(photo, "watermarked")
        if default_storage.exists(name):
            default_storage.delete(name)
        return web_name, ""
    with photo.original.open("rb") as original:
        full = open_upright(original)
    marked = apply_watermark(full, mark)
    data = jpeg_bytes(marked, max(marked.size), WATERMARKED_JPEG_QUALITY)
    return web_name, _save_rendition(photo, "watermarked", data)


def rerender_photo(photo_id: int) -> str:
    """Rewrite a finished photo's web and watermarked copies for its event's current watermark.

    Faces and matches are not touched and the face backend is not called.
    Returns "done", "current" (nothing to do) or "skipped" (the photo is
    gone or not finished: processing will render it).
    """
    outcome = "current"
    # A change made while this ran (another task may have rendered it and been
    # overwritten by this one) is caught by reading the version again.
    for _attempt in range(RERENDER_ATTEMPTS):
        photo = Photo.objects.select_related("event").filter(pk=photo_id, status=PhotoStatus.DONE).first()
        if photo is None:
            return "skipped"
        event = photo.event
        if photo.watermark_version == event.watermark_version:
            return outcome
        mark = event_watermark(event)
        with photo.original.open("rb") as original:
            image = open_upright(original, settings.PHOTO_ANALYSIS_MAX_SIDE)
        web_name, watermarked_name = _write_marked_renditions(photo, image, mark)
        updated = Photo.objects.filter(pk=photo.pk, status=PhotoStatus.DONE).update(
            web=web_name, watermarked=watermarked_name, watermark_version=event.watermark_version
        )
        if not updated:
            if not Photo.objects.filter(pk=photo.pk).exists():
                discard_renditions(photo)
            return "skipped"
        outcome = "done"
    return outcome


def _finish(
    photo: Photo,
    claim: uuid.UUID,
    image: Image.Image,
    result: IndexResult,
    new_matches: Sequence[NewFaceMatch],
    renditions: Renditions,
    started: float,
) -> tuple[list[Face], list[Face]]:
    """The short transaction that ends processing: returns the new faces and the ones they replaced."""
    with transaction.atomic():
        # Conditional on the claim: a worker that lost it, or a photo deleted
        # meanwhile, changes nothing. The update also takes the row's lock.
        finished = Photo.objects.filter(pk=photo.pk, claim=claim, status=PhotoStatus.PROCESSING).update(
            thumbnail=renditions.thumbnail,
            web=renditions.web,
            watermarked=renditions.watermarked,
            watermark_version=renditions.watermark_version,
            face_count=len(result.faces),
            unindexed_reasons=result.unindexed_reasons,
            status=PhotoStatus.DONE,
            error="",
            finished_at=timezone.now(),
            processing_ms=int((time.monotonic() - started) * 1000),
            claim=None,
        )
        if not finished:
            if not Photo.objects.filter(pk=photo.pk).exists():
                raise PhotoGone(f"photo {photo.pk} was deleted while it was processed")
            raise LostClaim(f"photo {photo.pk} was claimed by another worker")
        stale_faces = list(Face.objects.filter(photo_id=photo.pk))
        if stale_faces:
            # A first run has nothing to replace, and the delete's cascade would look for it again.
            Face.objects.filter(photo_id=photo.pk).delete()
        faces = _store_faces(photo, image, result.faces)
        reattach_corrections(photo, faces)
        # The photographer's edits of the people live on the faces: the new ones take them over.
        carry_over_groups(stale_faces, faces)
        matches = [
            FaceMatch(user_id=m.user_id, face_id=faces[m.face_index].pk, photo_id=photo.pk, similarity=m.similarity)
            for m in new_matches
        ]
        matches = enforce_corrections(photo.event, matches, photo=photo)
        _store_matches(photo.event, matches, replace_photo=photo)
        photo.event.bump_version()
        announce_matches(photo.event_id, matches)
    return faces, stale_faces


def discard_renditions(photo: Photo) -> None:
    """Delete the thumbnail, web and watermarked copies processing writes for `photo` (a deleted photo's leftovers)."""
    for kind in RENDITION_KINDS:
        name = _rendition_name(photo, kind)
        if default_storage.exists(name):
            default_storage.delete(name)


def _forget_detected(backend: FaceBackend, photo: Photo, detected: Sequence[DetectedFace]) -> None:
    stored = [Face(event_id=photo.event_id, external_id=d.external_id) for d in detected if d.external_id]
    if stored:
        backend.forget_faces(photo.event, stored)


def _ids(faces: Iterable[Face]) -> set[str]:
    return {face.external_id for face in faces if face.external_id}


def _rendition_name(photo: Photo, kind: str) -> str:
    return f"events/{photo.event_id}/{kind}/{photo.job_id.hex}.jpg"


def _save_rendition(photo: Photo, kind: str, data: bytes) -> str:
    name = _rendition_name(photo, kind)
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
            quality=d.quality,
            embedding=d.embedding.tobytes() if d.embedding is not None else None,
            external_id=d.external_id,
        )
        for d in detected
    ]
    return Face.objects.bulk_create(faces)


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


def announce_matches(event_id: int, matches: Iterable[FaceMatch | Match]) -> None:
    """After the commit, tell the alerts who has new matches (processing.alerts decides what is news)."""
    user_ids = sorted({m.user_id for m in matches})
    if user_ids:
        transaction.on_commit(partial(schedule_match_alerts, user_ids, event_id))


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
    rows = Match.objects.select_for_update().filter(event=event)
    if users is not None:
        rows = rows.filter(user_id__in=list(users))
    with transaction.atomic():
        # The faces were read before the transaction; a photo deleted or
        # reprocessed since then took some of them away.
        wanted = _best_per_photo(enforce_corrections(event, _still_present(matches), users))
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
        if users is None:
            # A member's own refresh follows their selfie or joining: they are on the site already.
            announce_matches(event.pk, added)
    return True


def _still_present(matches: Sequence[FaceMatch]) -> list[FaceMatch]:
    """Those of `matches` whose face still exists and is not hidden (call inside the transaction that writes them)."""
    face_ids = {m.face_id for m in matches}
    # A group the photographer hid (processing/people.py) is never matched to a guest.
    faces = Face.objects.filter(pk__in=face_ids).exclude(group__hidden=True)
    present = set(faces.values_list("pk", flat=True)) if face_ids else set()
    return [m for m in matches if m.face_id in present]


def schedule_event_refresh(event_id: int) -> None:
    """Refresh the event's matches once photos stop arriving for a moment.

    Per-photo matching already sees every earlier face; the event-wide pass
    makes the result independent of the order photos arrived in, and stores
    the event's face groups for the people view (processing/people.py). One
    pass per EVENT_REFRESH_DELAY seconds at most.
    """
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
        matches = enforce_corrections(event, _still_present(matches), [user.pk])
        _store_matches(event, matches, replace_user_id=user.pk)
        event.bump_version()
    return len({m.photo_id for m in matches})


def refresh_user_matches(user: User, backend: FaceBackend | None = None) -> dict[int, int]:
    """Recompute the attendee's matches in every event they joined."""
    events = Event.objects.filter(memberships__user=user)
    return {event.pk: refresh_member_matches(user, event, backend) for event in events}


def enrol_selfie(
    user: User, upload: UploadedFile, backend: FaceBackend | None = None, *, replace_all: bool = False
) -> tuple[Selfie, int]:
    """Add a selfie to the attendee's reference and refresh their matches.

    An attendee keeps up to MAX_SELFIES selfies; one beyond that replaces the
    oldest. With `replace_all` the new selfie replaces every earlier one (a
    live-checked selfie must not keep an earlier still, which could be anyone's).

    Raises `InvalidImage` or `NoFaceError`; nothing is stored then.
    """
    backend = backend or get_backend()
    image = open_upright(upload, SELFIE_MAX_SIDE, max_full_decode_pixels=settings.SELFIE_MAX_PIXELS)
    selfie = Selfie(user=user)
    face, faces_found = backend.enrol_selfie(selfie, image)
    kept = 0 if replace_all else settings.MAX_SELFIES - 1
    previous = list(Selfie.objects.filter(user=user).order_by("-created_at", "-pk")[kept:])
    selfie.embedding = face.embedding.tobytes() if face.embedding is not None else None
    selfie.external_id = face.external_id
    selfie.faces_found = faces_found
    selfie.image.save("selfie.jpg", ContentFile(jpeg_bytes(image, SELFIE_MAX_SIDE)), save=True)
    for old in previous:
        delete_selfie(old, backend)
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
        # What the attendee said about photos is about their face too.
        MatchCorrection.objects.filter(user=user).delete()
        if withdraw_consent:
            AttendeeProfile.objects.filter(user=user).update(face_consent_at=None)
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
