"""Corrections through the services: they hold through re-processing, the event-wide refresh and new photos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from gallery.models import CorrectionKind, Event, Face, Match, MatchCorrection, Membership, Photo, Selfie
from processing import backends, pipeline, services, tasks
from processing.corrections import faces_to_review
from tests.conftest import png_upload
from tests.fakes import scene_png
from tests.processing.test_no_backend_call_in_transaction import AtomicGuardBackend, add_photo, assert_guarded

pytestmark = pytest.mark.django_db


def mine(user: User) -> set[str]:
    return set(Match.objects.filter(user=user).values_list("photo__filename", flat=True))


def reprocess(photo: Photo) -> None:
    """Process the photo again, as the studio's retry does: its faces are replaced."""
    assert services.requeue_photo(photo, only_failed=False)  # the queue runs in-process in tests


def test_the_scene_as_the_matcher_sees_it(photos: dict[str, Photo], member: User) -> None:
    assert mine(member) == {"a1.png", "a2.png", "a3.png", "x1.png", "x2.png"}


def test_not_me_removes_the_photo_and_its_look_alikes(photos: dict[str, Photo], member: User) -> None:
    services.mark_not_me(member, photos["x1.png"])
    assert mine(member) == {"a1.png", "a2.png", "a3.png"}
    correction = MatchCorrection.objects.get(user=member, photo=photos["x1.png"])
    assert correction.kind == CorrectionKind.NOT_ME
    assert correction.face == Face.objects.get(photo=photos["x1.png"])


def test_not_me_survives_reprocessing_the_refresh_and_new_photos(
    photos: dict[str, Photo], member: User, event: Event, scene_upload: Callable[..., dict[str, Photo]]
) -> None:
    services.mark_not_me(member, photos["x1.png"])
    old_face = Face.objects.get(photo=photos["x1.png"]).pk

    reprocess(photos["x1.png"])
    new_face = Face.objects.get(photo=photos["x1.png"])
    assert new_face.pk != old_face
    # The correction follows the photo's new face.
    assert MatchCorrection.objects.get(user=member, photo=photos["x1.png"]).face_id == new_face.pk
    assert "x1.png" not in mine(member)

    pipeline.refresh_event_matches(event)
    assert mine(member) == {"a1.png", "a2.png", "a3.png"}

    scene_upload("x3.png")  # the stranger again, in a new photo
    assert "x3.png" not in mine(member)
    pipeline.refresh_event_matches(event)
    assert mine(member) == {"a1.png", "a2.png", "a3.png"}


def test_undoing_not_me_gives_the_photo_back(photos: dict[str, Photo], member: User) -> None:
    services.mark_not_me(member, photos["x1.png"])
    assert services.undo_not_me(member, photos["x1.png"])
    assert mine(member) == {"a1.png", "a2.png", "a3.png", "x1.png", "x2.png"}
    assert not services.undo_not_me(member, photos["x1.png"])


def test_thats_me_adds_the_photo_and_brings_its_group(photos: dict[str, Photo], member: User, event: Event) -> None:
    y1 = photos["y1.png"]
    chosen = Face.objects.filter(photo=y1).order_by("left").first()
    assert chosen is not None
    services.mark_me(member, y1, chosen)
    assert {"y1.png", "y2.png"} <= mine(member)
    assert Match.objects.get(user=member, photo=y1).face == chosen

    reprocess(y1)
    pipeline.refresh_event_matches(event)
    assert {"y1.png", "y2.png"} <= mine(member)
    new_face = Face.objects.filter(photo=y1).order_by("left").first()
    assert Match.objects.get(user=member, photo=y1).face == new_face


def test_thats_me_holds_only_while_the_attendee_consents_and_is_a_member(
    photos: dict[str, Photo], member: User, event: Event
) -> None:
    y1 = photos["y1.png"]
    services.mark_me(member, y1, Face.objects.filter(photo=y1).order_by("left")[0])
    Membership.objects.filter(user=member, event=event).delete()
    pipeline.refresh_event_matches(event)
    assert "y1.png" not in mine(member)


def test_forgetting_face_data_forgets_the_corrections(photos: dict[str, Photo], member: User) -> None:
    services.mark_not_me(member, photos["x1.png"])
    services.mark_me(member, photos["y2.png"], Face.objects.get(photo=photos["y2.png"]))
    services.forget_attendee(member)
    assert not MatchCorrection.objects.filter(user=member).exists()


def test_selfies_add_up_to_the_limit_then_replace_the_oldest(
    photos: dict[str, Photo], member: User, settings: Any
) -> None:
    settings.MAX_SELFIES = 3
    first = Selfie.objects.get(user=member)
    for _ in range(3):
        services.enrol_selfie(member, png_upload("me.png", scene_png([0])))
    kept = list(Selfie.objects.filter(user=member))
    assert len(kept) == 3
    assert first not in kept
    assert mine(member) == {"a1.png", "a2.png", "a3.png", "x1.png", "x2.png"}


@pytest.mark.django_db(transaction=True)
def test_corrections_call_the_backend_outside_transactions(
    monkeypatch: pytest.MonkeyPatch, event: Event, member: User
) -> None:
    monkeypatch.setitem(
        backends.BACKENDS, "local", "tests.processing.test_no_backend_call_in_transaction.AtomicGuardBackend"
    )
    monkeypatch.setattr(AtomicGuardBackend, "calls", [])
    monkeypatch.setattr(AtomicGuardBackend, "inside_atomic", [])
    backends.get_backend.cache_clear()
    try:
        photos = [add_photo(event, people, seed) for seed, people in enumerate([[0, 1], [1], [0]])]
        tasks.process_photos([p.pk for p in photos])
        services.enrol_selfie(member, png_upload("me.png", scene_png([0])))
        AtomicGuardBackend.calls.clear()
        services.mark_not_me(member, photos[2])
        services.undo_not_me(member, photos[2])
        services.mark_me(member, photos[1], Face.objects.get(photo=photos[1]))
        assert_guarded(AtomicGuardBackend, "match_event")
    finally:
        backends.get_backend.cache_clear()


def test_is_this_you_asks_about_the_matches_furthest_from_the_selfie(
    photos: dict[str, Photo], member: User, event: Event, settings: Any
) -> None:
    # The stranger's faces are 0.38 from the selfie, the attendee's own 0.2.
    settings.FACE_REVIEW_DISTANCE = 0.3
    asked = faces_to_review(member.pk, event)
    assert [(photo, face) for photo, face in asked] == [
        (photos[name].pk, Face.objects.get(photo=photos[name]).pk) for name in ("x1.png", "x2.png")
    ]
    settings.FACE_REVIEW_DISTANCE = 0.45
    assert faces_to_review(member.pk, event) == []

    # One "not me" answers for the look-alike's other photo too.
    settings.FACE_REVIEW_DISTANCE = 0.3
    services.mark_not_me(member, photos["x1.png"])
    assert faces_to_review(member.pk, event) == []


def test_a_photo_the_attendee_confirmed_is_not_asked_about_again(
    photos: dict[str, Photo], member: User, event: Event, settings: Any
) -> None:
    settings.FACE_REVIEW_DISTANCE = 0.3
    photo_id, face_id = faces_to_review(member.pk, event)[0]
    services.mark_me(member, Photo.objects.get(pk=photo_id), Face.objects.get(pk=face_id))
    assert photo_id not in {photo for photo, _ in faces_to_review(member.pk, event)}
    assert photo_id in {p.pk for p in Photo.objects.filter(matches__user=member)}


def test_is_this_you_then_asks_about_faces_matched_to_nobody_near_the_selfie(
    photos: dict[str, Photo], member: User, event: Event, settings: Any
) -> None:
    # Nothing matched is doubtful from 0.45; y2's face and z (beside y1) are 0.71 from the selfie.
    settings.FACE_REVIEW_DISTANCE = 0.45
    settings.FACE_REVIEW_MISSED_DISTANCE = 0.6
    assert faces_to_review(member.pk, event) == []
    settings.FACE_REVIEW_MISSED_DISTANCE = 0.75
    z = Face.objects.filter(photo=photos["y1.png"]).order_by("-left").first()
    y2 = Face.objects.get(photo=photos["y2.png"])
    assert z is not None
    assert faces_to_review(member.pk, event) == [(photos["y1.png"].pk, z.pk), (photos["y2.png"].pk, y2.pk)]
    assert faces_to_review(member.pk, event, missed=False) == []

    # "Not me" on a face they were asked about keeps that face, and the photo is not asked about again.
    services.mark_not_me(member, photos["y2.png"], y2)
    assert MatchCorrection.objects.get(user=member, photo=photos["y2.png"]).face == y2
    assert faces_to_review(member.pk, event) == [(photos["y1.png"].pk, z.pk)]
