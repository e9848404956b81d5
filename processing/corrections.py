"""Attendees' corrections ("not me", "that's me") and how they bind every matching path.

A correction acts twice:

- as a constraint inside the matcher (`event_constraints`, `rejected_vectors`):
  a rejected face cannot link with the attendee, so its look-alikes stay out of
  their group too; a confirmed face anchors a group for them, so its look-alikes
  come along;
- as a rule on what is stored (`enforce_corrections`), whatever the backend
  answered: a photo the attendee said they are not in is never theirs, and a
  face they said is theirs always is. Every path that writes matches (a photo
  processed, the event-wide refresh, a selfie or membership change) goes
  through it, so a correction survives re-processing and new photos.

Re-processing replaces a photo's Face rows. Corrections are keyed on the photo
and keep the face's box; `reattach_corrections` points them at the new face
that overlaps that box most, in the transaction that stores the new faces.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from gallery.models import (
    EMBEDDING_DTYPE,
    CorrectionKind,
    Event,
    Face,
    Match,
    MatchCorrection,
    Membership,
    Photo,
    PhotoStatus,
    Selfie,
)
from processing.backends.base import FaceMatch
from processing.matching import DESCRIPTOR_SIZE, WEAK_QUALITY, MatchConstraints, nearest_distances

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# A new face takes over a correction when it covers at least this much of the
# old box (intersection over union); detectors move boxes by a few pixels
# between runs, while two people's faces overlap far less than this.
REATTACH_MIN_OVERLAP = 0.3
# The similarity stored for a face the attendee said is theirs: certain.
CONFIRMED_SIMILARITY = 1.0
# How many of their photos a guest is asked about at once ("Is this you?").
REVIEW_PROMPTS = 3

Box = tuple[float, float, float, float]


def box_overlap(a: Box, b: Box) -> float:
    """Intersection over union of two (left, top, width, height) boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def face_box(face: Face) -> Box:
    return (face.left, face.top, face.width, face.height)


def record_correction(user: User, photo: Photo, kind: str, face: Face | None) -> MatchCorrection:
    """Store the attendee's correction on `photo`, replacing any earlier one (call inside a transaction)."""
    box = face_box(face) if face is not None else (None, None, None, None)
    correction, _ = MatchCorrection.objects.update_or_create(
        user=user,
        photo=photo,
        defaults={
            "event_id": photo.event_id,
            "kind": kind,
            "face": face,
            "left": box[0],
            "top": box[1],
            "width": box[2],
            "height": box[3],
        },
    )
    return correction


def reattach_corrections(photo: Photo, faces: Sequence[Face]) -> None:
    """Point the photo's corrections at its new faces by box overlap (inside the transaction that stores them)."""
    for correction in MatchCorrection.objects.filter(photo_id=photo.pk, left__isnull=False):
        old = (correction.left or 0.0, correction.top or 0.0, correction.width or 0.0, correction.height or 0.0)
        scored = [(box_overlap(old, face_box(face)), face.pk) for face in faces]
        overlap, face_id = max(scored, default=(0.0, None))
        new_face = face_id if overlap >= REATTACH_MIN_OVERLAP else None
        if new_face != correction.face_id:
            MatchCorrection.objects.filter(pk=correction.pk).update(face_id=new_face)


def event_constraints(event: Event) -> MatchConstraints:
    """Every attendee's corrections in `event` as matching constraints, by face id."""
    confirmed: dict[int, set[int]] = {}
    rejected: dict[int, set[int]] = {}
    rows = MatchCorrection.objects.filter(event=event, face__isnull=False).values_list("user_id", "kind", "face_id")
    for user_id, kind, face_id in rows:
        target = confirmed if kind == CorrectionKind.ME else rejected
        target.setdefault(user_id, set()).add(face_id)
    return MatchConstraints(confirmed=confirmed, rejected=rejected)


def rejected_vectors(event: Event, user_ids: Collection[int]) -> dict[int, np.ndarray]:
    """Per attendee of `user_ids`, the descriptors of the faces of `event` they said are not them."""
    rows = MatchCorrection.objects.filter(
        event=event, user_id__in=list(user_ids), kind=CorrectionKind.NOT_ME, face__embedding__isnull=False
    ).values_list("user_id", "face__embedding")
    vectors: dict[int, list[np.ndarray]] = {}
    for user_id, embedding in rows:
        vectors.setdefault(user_id, []).append(np.frombuffer(bytes(embedding or b""), dtype=EMBEDDING_DTYPE))
    return {user: np.stack(found).reshape(-1, DESCRIPTOR_SIZE) for user, found in vectors.items()}


def enforce_corrections(
    event: Event, matches: Sequence[FaceMatch], users: Collection[int] | None = None, photo: Photo | None = None
) -> list[FaceMatch]:
    """`matches` as the corrections say: none in a "not me" photo, the confirmed face in a "that's me" one.

    Only the corrections of `users` (all, if None) on `photo` (all, if None)
    apply, the same scope as the matches given. A confirmed face is added only
    for an attendee who still consents to face matching and is a member.
    Call it inside the transaction that writes the matches.
    """
    corrections = MatchCorrection.objects.filter(event=event)
    if users is not None:
        corrections = corrections.filter(user_id__in=list(users))
    if photo is not None:
        corrections = corrections.filter(photo=photo)
    rows = list(corrections.values_list("user_id", "photo_id", "kind", "face_id"))
    if not rows:
        return list(matches)
    corrected = {(user_id, photo_id) for user_id, photo_id, _, _ in rows}
    kept = [m for m in matches if (m.user_id, m.photo_id) not in corrected]
    confirming = {user_id for user_id, _, kind, face_id in rows if kind == CorrectionKind.ME and face_id}
    eligible = set(
        Membership.objects.filter(
            event=event, user_id__in=confirming, user__attendee__face_consent_at__isnull=False
        ).values_list("user_id", flat=True)
    )
    for user_id, photo_id, kind, face_id in rows:
        if kind == CorrectionKind.ME and face_id and user_id in eligible:
            kept.append(FaceMatch(user_id=user_id, face_id=face_id, photo_id=photo_id, similarity=CONFIRMED_SIMILARITY))
    return kept


def faces_to_review(
    user_id: int, event: Event, limit: int = REVIEW_PROMPTS, *, missed: bool = True
) -> list[tuple[int, int]]:
    """The faces to ask the attendee "Is this you?" about, as (photo id, face id): doubtful matches, then missed faces.

    A match is doubtful when its face is at least FACE_REVIEW_DISTANCE from
    every selfie of the attendee: the matcher took it on the strength of the
    group it joined, which is where a look-alike who appears in many photos
    comes in. They come first, the most doubtful first. Then, with `missed`
    (for guests who may see every photo of the event, never in "own photos
    only" events), the faces matched to nobody within FACE_REVIEW_MISSED_DISTANCE
    of a selfie, the nearest first and one per photo: the guest in a group of
    photos the selfie does not reach.

    An answer is a correction, and so a constraint on every later matching:
    "not me" keeps out the face and the faces nearer it than to the rest of
    the attendee's group (and, here, the faces nearer it than the selfie are
    not asked about), "that's me" keeps the face and brings the faces of its
    group; a photo answered is not asked about again. Only descriptor backends (local) store
    what this needs; with others the list is empty.
    """
    selfies = [
        np.frombuffer(bytes(embedding or b""), dtype=EMBEDDING_DTYPE)
        for embedding in Selfie.objects.filter(user_id=user_id, embedding__isnull=False).values_list(
            "embedding", flat=True
        )
    ]
    if not selfies or limit <= 0:
        return []
    references = np.stack(selfies).reshape(-1, DESCRIPTOR_SIZE)
    answered = MatchCorrection.objects.filter(user_id=user_id, event=event).values("photo_id")
    rows = list(
        Match.objects.filter(
            user_id=user_id, event=event, photo__status=PhotoStatus.DONE, face__embedding__isnull=False
        )
        .exclude(photo_id__in=answered)
        .values_list("photo_id", "face_id", "face__embedding")
    )
    doubtful = [
        (-distance, photo_id, face_id)
        for photo_id, face_id, distance in _selfie_distances(rows, references)
        if distance >= settings.FACE_REVIEW_DISTANCE
    ]
    asked = [(photo_id, face_id) for _, photo_id, face_id in sorted(doubtful)[:limit]]
    if not missed or len(asked) >= limit:
        return asked
    faces = list(
        Face.objects.filter(
            event=event, photo__status=PhotoStatus.DONE, embedding__isnull=False, quality__gte=WEAK_QUALITY
        )
        .exclude(photo_id__in=answered)
        .exclude(photo_id__in=Match.objects.filter(user_id=user_id, event=event).values("photo_id"))
        .exclude(matches__isnull=False)
        .exclude(group__hidden=True)
        .values_list("photo_id", "id", "embedding")
    )
    # A face nearer one the attendee said is not them than their selfie is that look-alike: not asked about.
    refused = rejected_vectors(event, [user_id]).get(user_id)
    to_refused = dict(
        ((photo_id, face_id), distance)
        for photo_id, face_id, distance in (_selfie_distances(faces, refused) if refused is not None else [])
    )
    nearest: dict[int, tuple[float, int]] = {}
    for photo_id, face_id, distance in _selfie_distances(faces, references):
        if distance > settings.FACE_REVIEW_MISSED_DISTANCE or to_refused.get((photo_id, face_id), np.inf) < distance:
            continue
        if (distance, face_id) < nearest.get(photo_id, (np.inf, 0)):
            nearest[photo_id] = (distance, face_id)
    candidates = sorted((distance, photo_id, face_id) for photo_id, (distance, face_id) in nearest.items())
    return asked + [(photo_id, face_id) for _, photo_id, face_id in candidates[: limit - len(asked)]]


def _selfie_distances(
    rows: Sequence[tuple[int, int, bytes | memoryview | None]], references: np.ndarray
) -> list[tuple[int, int, float]]:
    """(photo id, face id, distance to the nearest row of `references`) for (photo id, face id, descriptor) rows."""
    if not rows:
        return []
    vectors = np.stack([np.frombuffer(bytes(row[2] or b""), dtype=EMBEDDING_DTYPE) for row in rows])
    distances = nearest_distances(vectors.reshape(-1, DESCRIPTOR_SIZE), references)
    return [(row[0], row[1], float(d)) for row, d in zip(rows, distances.tolist(), strict=True)]
