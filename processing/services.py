"""The named entry points through which pages, API, admin and commands call processing.

Nothing outside `processing` imports its other modules: this is the contract.
Every function here does its face-backend and network work outside database
transactions:

- deletions of photos and events delete the rows in one short transaction and
  tell the face backend to forget the faces after the commit. Called inside a
  caller's transaction (the Django admin's), the backend call waits for that
  transaction's commit. A backend that does not answer then is asked again by
  the queue, with backoff, so no face stays at the service for good;
- the attendee's face data (`forget_attendee`, `delete_selfie`,
  `delete_account`) is forgotten by the backend first and deleted here after,
  so that a backend failure (`BackendError`) leaves everything in place for a
  retry and the attendee is never told it is gone while it is not. Call them
  outside transactions;
- an attendee's corrections (`mark_not_me`, `undo_not_me`, `mark_me`) change
  their matches at once in one short transaction, then bring the rest of their
  matches up to date with the backend after the commit. Call them outside
  transactions.

Stored files go on commit with their rows, whatever deleted them
(`gallery.signals`): cascades delete rows these functions never see.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction

from gallery.models import CorrectionKind, Event, Face, Match, MatchCorrection, Photo, forget_cached_events
from processing.alerts import retry_alert_delivery, schedule_match_alerts, send_sign_in_link_later
from processing.archives import current_archive, request_archive
from processing.backends import get_backend
from processing.backends.base import BackendError, NoFaceError, UnusableSelfie
from processing.corrections import CONFIRMED_SIMILARITY, faces_to_review, record_correction
from processing.crops import face_thumbnail
from processing.images import ImageInfo, InvalidImage, inspect_image
from processing.liveness import MAX_LIVE_FRAMES, LivenessResult, issue_challenge, verify_live_selfie
from processing.people import (
    PeopleEditError,
    face_crop_jpeg,
    hide_group,
    merge_groups,
    regroup_event,
    split_face,
)
from processing.pipeline import (
    ForgottenFaceData,
    delete_selfie,
    enrol_selfie,
    forget_attendee,
    refresh_member_matches,
    schedule_event_refresh,
)
from processing.quality import event_quality_report
from processing.tasks import (
    enqueue_photos,
    enqueue_rerender,
    forget_event_later,
    forget_faces_later,
    requeue_photo,
    waiting_count,
)
from processing.watermark import check_logo

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import UploadedFile

    from gallery.models import FaceGroup

__all__ = [
    "MAX_LIVE_FRAMES",
    "BackendError",
    "ForgottenFaceData",
    "ImageInfo",
    "InvalidImage",
    "LivenessResult",
    "NoFaceError",
    "PeopleEditError",
    "UnusableSelfie",
    "WatermarkSettings",
    "check_logo",
    "current_archive",
    "delete_account",
    "delete_event",
    "delete_photo",
    "delete_selfie",
    "enqueue_photos",
    "enrol_selfie",
    "event_quality_report",
    "face_crop_jpeg",
    "face_thumbnail",
    "forget_attendee",
    "hide_face_group",
    "inspect_image",
    "issue_challenge",
    "mark_me",
    "mark_not_me",
    "merge_face_groups",
    "refresh_member_matches",
    "regroup_event",
    "request_archive",
    "requeue_photo",
    "retry_alert_delivery",
    "schedule_match_alerts",
    "send_sign_in_link_later",
    "set_watermark",
    "split_face_group",
    "undo_not_me",
    "verify_live_selfie",
    "waiting_count",
]

logger = logging.getLogger("processing.services")


def delete_photo(photo: Photo) -> None:
    """Delete one photo with its faces, matches and files; the backend forgets its faces after the commit."""
    event = photo.event
    with transaction.atomic():
        faces = Face.objects.filter(photo_id=photo.pk).exclude(external_id="")
        stored = list(faces.values_list("external_id", flat=True))
        photo.delete()
        event.bump_version()
        if stored:
            transaction.on_commit(partial(_forget_faces, event.pk, stored))


def delete_event(event: Event) -> None:
    """Delete an event with its photos, faces, matches and files; the backend drops its collection after the commit."""
    event_id = event.pk
    with transaction.atomic():
        event.delete()
        transaction.on_commit(partial(_forget_event, event_id))


def delete_account(user: User) -> ForgottenFaceData:
    """Delete an attendee's face data (backend first), then the account and all it owns.

    Events the account owns go with it; the backend forgets them after the commit.
    """
    forgotten = forget_attendee(user)
    with transaction.atomic():
        owned = list(Event.objects.filter(owner=user).values_list("pk", flat=True))
        user.delete()
        for event_id in owned:
            transaction.on_commit(partial(_forget_event, event_id))
    return forgotten


def _forget_faces(event_id: int, external_ids: Sequence[str]) -> None:
    faces = [Face(event_id=event_id, external_id=external_id) for external_id in external_ids]
    try:
        get_backend().forget_faces(Event(pk=event_id), faces)
    except BackendError:
        logger.warning("The face backend did not forget %d faces of event %s; the queue retries", len(faces), event_id)
        forget_faces_later(event_id, external_ids)


def _forget_event(event_id: int) -> None:
    try:
        get_backend().forget_event(Event(pk=event_id))
    except BackendError:
        logger.warning("The face backend did not forget event %s; the queue retries", event_id)
        forget_event_later(event_id)


@dataclass(frozen=True)
class WatermarkSettings:
    """An event's watermark as the photographer sets it; `logo` is a new PNG, already checked with `check_logo`."""

    text: str
    position: str
    opacity: float
    size: float
    guests_get_originals: bool
    logo: UploadedFile | None = None
    clear_logo: bool = False


def set_watermark(event: Event, wanted: WatermarkSettings) -> bool:
    """Save the event's watermark; when what is drawn changed, re-render its photos through the queue.

    The new logo is stored before the transaction (storage may be S3); the
    replaced one is deleted after the commit. Returns whether the photos are
    re-rendered (not when only `guests_get_originals` changed); they are
    queued after the commit.
    """
    before = _drawn(event)
    old_logo = event.watermark_logo.name if (wanted.logo is not None or wanted.clear_logo) else ""
    if wanted.logo is not None:
        event.watermark_logo.save("logo.png", wanted.logo, save=False)
    elif wanted.clear_logo:
        event.watermark_logo = ""  # type: ignore[assignment]
    event.watermark_text = wanted.text.strip()
    event.watermark_position = wanted.position
    event.watermark_opacity = wanted.opacity
    event.watermark_size = wanted.size
    event.guests_get_originals = wanted.guests_get_originals
    changed = _drawn(event) != before
    storage = event.watermark_logo.storage
    with transaction.atomic():
        if changed:
            event.watermark_version = (
                Event.objects.select_for_update().filter(pk=event.pk).values_list("watermark_version", flat=True).get()
                + 1
            )
        event.save(
            update_fields=[
                "watermark_text",
                "watermark_logo",
                "watermark_position",
                "watermark_opacity",
                "watermark_size",
                "watermark_version",
                "guests_get_originals",
            ]
        )
        forget_cached_events(event.pk)
        if old_logo and old_logo != event.watermark_logo.name:
            transaction.on_commit(partial(storage.delete, old_logo))
        if changed:
            transaction.on_commit(partial(enqueue_rerender, event.pk))
    return changed


def _drawn(event: Event) -> tuple[object, ...]:
    """What the renditions depend on: a change to any of it re-renders."""
    return (
        event.watermark_text.strip(),
        event.watermark_logo.name or "",
        event.watermark_position,
        round(event.watermark_opacity, 3),
        round(event.watermark_size, 3),
    )


# --- People of the event (processing/people.py) ----------------------------------


def merge_face_groups(event: Event, into: FaceGroup, other: FaceGroup) -> FaceGroup:
    """Merge `other` into `into` for good; the guests' matches follow at the next event refresh."""
    merged = merge_groups(event, into, other)
    schedule_event_refresh(event.pk)
    return merged


def split_face_group(event: Event, group: FaceGroup, face: Face) -> FaceGroup:
    """Move one face out of its group, for good; returns the face's new group."""
    alone = split_face(event, group, face)
    schedule_event_refresh(event.pk)
    return alone


def hide_face_group(event: Event, group: FaceGroup, hidden: bool) -> None:
    """Hide a group (its matches go at once, and it is never matched again) or show it again."""
    hide_group(event, group, hidden)
    if not hidden:
        # Its matches come back with the next event-wide pass.
        schedule_event_refresh(event.pk)


def mark_not_me(user: User, photo: Photo, face: Face | None = None) -> None:
    """ "Not me": `photo` leaves the attendee's photos at once and for good, and the matcher avoids its look-alikes.

    The face they were matched to, or `face` (a face of the photo they were
    asked about), becomes a cannot-link for them (`processing.corrections`);
    re-processing and event-wide refreshes keep the photo out until `undo_not_me`.
    """
    with transaction.atomic():
        face = Face.objects.filter(matches__user=user, matches__photo=photo).first() or face
        record_correction(user, photo, CorrectionKind.NOT_ME, face)
        Match.objects.filter(user=user, photo=photo).delete()
        photo.event.bump_version()
    _rematch(user, photo.event)


def undo_not_me(user: User, photo: Photo) -> bool:
    """Withdraw a "not me": the matcher decides about `photo` again. Returns whether there was one."""
    with transaction.atomic():
        deleted, _ = MatchCorrection.objects.filter(user=user, photo=photo, kind=CorrectionKind.NOT_ME).delete()
        if deleted:
            photo.event.bump_version()
    if deleted:
        _rematch(user, photo.event)
    return bool(deleted)


def mark_me(user: User, photo: Photo, face: Face) -> None:
    """ "That's me": `face` of `photo` is the attendee's; the photo joins their photos at once.

    The face becomes a must-link for them, so its look-alikes in other photos
    come along once their matches are brought up to date.
    """
    with transaction.atomic():
        record_correction(user, photo, CorrectionKind.ME, face)
        Match.objects.filter(user=user, photo=photo).delete()
        Match.objects.create(
            user=user, event_id=photo.event_id, photo=photo, face=face, similarity=CONFIRMED_SIMILARITY
        )
        photo.event.bump_version()
    _rematch(user, photo.event)


def review_questions(user: User, event: Event, *, missed: bool) -> list[tuple[int, int]]:
    """The faces to ask the attendee "Is this you?" about, as (photo id, face id), in asking order.

    `missed`: also faces matched to nobody near their selfie (only for guests
    who may see every photo). See `processing.corrections.faces_to_review`.
    """
    return faces_to_review(user.pk, event, missed=missed)


def _rematch(user: User, event: Event) -> None:
    # The correction itself is stored and applied; a backend that does not
    # answer only delays the look-alikes, which the next refresh brings.
    try:
        refresh_member_matches(user, event)
    except BackendError:
        logger.warning("Matches of user %s in event %s not refreshed after a correction", user.pk, event.pk)
