"""processing.quality.event_quality_report: the photographer's counts for an event."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import User

from gallery.models import CorrectionKind, Event, Face, Match, MatchCorrection, Photo
from processing.quality import event_quality_report, weak_similarity

pytestmark = pytest.mark.django_db


def add_face(event: Event, name: str, vector: np.ndarray, quality: float = 0.9) -> Face:
    photo, _ = Photo.objects.get_or_create(event=event, filename=name, sha256=name, format="JPEG")
    return Face.objects.create(
        photo=photo,
        event=event,
        left=0,
        top=0,
        width=0.1,
        height=0.1,
        embedding=vector.astype(np.float32).tobytes(),
        quality=quality,
    )


def direction(index: int, length: float = 0.3) -> np.ndarray:
    vector = np.zeros(128, np.float32)
    vector[index] = length
    return vector


def test_the_report_counts_matched_unclaimed_unusable_and_weak(event: Event, member: User) -> None:
    guest = [add_face(event, f"guest-{k}.jpg", direction(0) + direction(10 + k, 0.05)) for k in range(3)]
    weak_guest = add_face(event, "guest-far.jpg", direction(0) + direction(20, 0.05), quality=0.3)
    for k in range(2):  # someone in two photos whom nobody claimed
        add_face(event, f"stranger-{k}.jpg", direction(1) + direction(30 + k, 0.05))
    add_face(event, "lone.jpg", direction(2, 0.7))
    add_face(event, "tiny.jpg", direction(3), quality=0.05)
    for face, similarity in [(guest[0], 0.8), (guest[1], 0.8), (guest[2], weak_similarity() - 0.01)]:
        Match.objects.create(user=member, event=event, photo=face.photo, face=face, similarity=similarity)
    Match.objects.create(user=member, event=event, photo=weak_guest.photo, face=weak_guest, similarity=0.7)

    report = event_quality_report(event)

    assert report | {"weak_similarity": None} == {
        "event": event.pk,
        "faces_found": 8,
        "faces_matched": 4,
        "faces_unclaimed": 2,
        "unclaimed_groups": 1,
        "faces_unusable": 1,
        "faces_weak": 1,
        "matches": 4,
        "weak_matches": 2,
        "guests_with_selfie": 0,
        "answers_me": 0,
        "answers_not_me": 0,
        "guests_who_answered": 0,
        "weak_similarity": None,
    }


def test_the_report_counts_the_guests_answers(event: Event, member: User) -> None:
    other = User.objects.create_user("other-guest")
    faces = [add_face(event, f"photo-{k}.jpg", direction(k)) for k in range(4)]
    answers = [(member, faces[0], CorrectionKind.ME), (member, faces[1], CorrectionKind.NOT_ME)]
    answers += [(other, faces[2], CorrectionKind.NOT_ME), (other, faces[3], CorrectionKind.NOT_ME)]
    for user, face, kind in answers:
        MatchCorrection.objects.create(user=user, event=event, photo=face.photo, face=face, kind=kind)
    elsewhere = Event.objects.create(name="Elsewhere", owner=event.owner)
    photo = Photo.objects.create(event=elsewhere, filename="x.jpg", sha256="x", format="JPEG")
    MatchCorrection.objects.create(user=member, event=elsewhere, photo=photo, kind=CorrectionKind.ME)

    report = event_quality_report(event)

    assert (report["answers_me"], report["answers_not_me"], report["guests_who_answered"]) == (1, 3, 2)


def test_an_empty_event_reports_zeros(event: Event) -> None:
    report = event_quality_report(event)

    assert report["faces_found"] == report["faces_unclaimed"] == report["matches"] == 0
