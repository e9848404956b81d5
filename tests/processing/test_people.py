"""The people edits hold through re-processing, and a hidden group is never matched on any path."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile

from gallery.models import Event, Face, FaceGroup, Match, Photo, PhotoStatus
from processing import people, pipeline, tasks
from tests.conftest import png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db

RED, BLUE, GREEN = 0, 1, 2


def add_photo(event: Event, persons: list[int], seed: int) -> Photo:
    """A marker photo of `persons`, processed by the marker backend."""
    photo = Photo(event=event, filename=f"p{seed}.png", sha256=f"sha-{seed}", format="PNG")
    photo.original.save(photo.filename, ContentFile(scene_png(persons, seed=seed)), save=False)
    photo.save()
    assert tasks.run_photo(photo.pk) == "done"
    return photo


def reprocess(photo: Photo) -> None:
    """Process the photo again: its Face rows are replaced by new ones."""
    before = set(Face.objects.filter(photo=photo).values_list("pk", flat=True))
    Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.QUEUED)
    assert tasks.run_photo(photo.pk) == "done"
    assert before.isdisjoint(Face.objects.filter(photo=photo).values_list("pk", flat=True))


def person_of(face: Face) -> int:
    vector = face.vector
    assert vector is not None
    return int(np.argmax(vector))


def groups_by_person(event: Event) -> dict[int, set[int | None]]:
    """{marker person: ids of the groups their faces are in}."""
    found: dict[int, set[int | None]] = {}
    for face in Face.objects.filter(event=event):
        found.setdefault(person_of(face), set()).add(face.group_id)
    return found


def group_of(event: Event, person: int) -> FaceGroup:
    (group_id,) = groups_by_person(event)[person]
    assert group_id is not None
    return FaceGroup.objects.get(pk=group_id)


def enrol(user: User, persons: list[int]) -> None:
    pipeline.enrol_selfie(user, png_upload("me.png", scene_png(persons)))


@pytest.fixture
def scene(event: Event, fake_backend: object) -> list[Photo]:
    scenes = [[RED, BLUE], [RED], [RED], [BLUE], [GREEN]]
    photos = [add_photo(event, persons, seed) for seed, persons in enumerate(scenes)]
    tasks.refresh_event(event.pk)
    return photos


def test_a_merge_holds_through_reprocessing(event: Event, scene: list[Photo]) -> None:
    merged = people.merge_groups(event, group_of(event, RED), group_of(event, BLUE))
    reprocess(scene[0])
    reprocess(scene[3])
    tasks.refresh_event(event.pk)
    assert groups_by_person(event)[RED] == groups_by_person(event)[BLUE] == {merged.pk}
    assert groups_by_person(event)[GREEN] != {merged.pk}


def test_a_split_holds_through_reprocessing(event: Event, scene: list[Photo]) -> None:
    red = group_of(event, RED)
    alone = people.split_face(event, red, Face.objects.get(photo=scene[2]))
    reprocess(scene[2])
    tasks.refresh_event(event.pk)
    moved = Face.objects.get(photo=scene[2])
    assert moved.group_id == alone.pk
    assert set(Face.objects.filter(photo__in=scene[:2], group_id=red.pk).values_list("photo_id", flat=True)) == {
        scene[0].pk,
        scene[1].pk,
    }


def test_hiding_holds_through_reprocessing(event: Event, scene: list[Photo]) -> None:
    # Green is in one photo only: once it is processed again, no old face of the group is left.
    people.hide_group(event, group_of(event, GREEN), True)
    reprocess(scene[4])
    tasks.refresh_event(event.pk)
    assert group_of(event, GREEN).hidden and not group_of(event, BLUE).hidden


def test_carry_over_needs_the_boxes_to_overlap(event: Event, scene: list[Photo]) -> None:
    old = Face.objects.get(photo=scene[1])
    elsewhere = Face(photo=scene[1], event=event, left=old.left + 0.5, top=old.top, width=old.width, height=old.height)
    same = Face(photo=scene[1], event=event, left=old.left, top=old.top, width=old.width, height=old.height)
    Face.objects.bulk_create([elsewhere, same])
    assert people.carry_over_groups([old], [elsewhere, same]) == 1
    assert Face.objects.get(pk=same.pk).group_id == old.group_id
    assert Face.objects.get(pk=elsewhere.pk).group_id is None


@pytest.mark.parametrize("strategy", ["event", "threshold"])
def test_a_hidden_group_is_never_matched_on_any_path(
    event: Event, scene: list[Photo], member: User, make_user, settings, strategy: str
) -> None:
    settings.FACE_MATCH_STRATEGY = strategy
    blue_guest = make_user("blue-guest")
    event.memberships.create(user=blue_guest)
    enrol(member, [RED])
    enrol(blue_guest, [BLUE])
    tasks.refresh_event(event.pk)
    assert Match.objects.filter(user=member).count() == 3
    people.hide_group(event, group_of(event, RED), True)
    assert not Match.objects.filter(user=member).exists()
    # A new photo of them, matched live, before any regrouping placed its face.
    add_photo(event, [RED, BLUE], seed=12)
    assert not Match.objects.filter(user=member).exists()
    # A re-processed photo of them.
    reprocess(scene[1])
    assert not Match.objects.filter(user=member).exists()
    # A selfie change.
    enrol(member, [RED])
    assert not Match.objects.filter(user=member).exists()
    # The event-wide pass.
    tasks.refresh_event(event.pk)
    assert not Match.objects.filter(user=member).exists()
    assert Match.objects.filter(user=blue_guest).count() == 3
    # Shown again, the person's photos come back at the next pass.
    people.hide_group(event, group_of(event, RED), False)
    tasks.refresh_event(event.pk)
    assert Match.objects.filter(user=member).count() == 4


def test_hidden_faces_take_no_part_in_the_event_wide_clustering(event: Event, scene: list[Photo]) -> None:
    faces = list(Face.objects.filter(event=event).order_by("id"))
    ids = np.array([f.pk for f in faces])
    vectors = np.stack([v for f in faces if (v := f.vector) is not None])
    assert not people.hidden_face_mask(event, ids, vectors).any()
    people.hide_group(event, group_of(event, RED), True)
    assert people.hidden_face_mask(event, ids, vectors).tolist() == [person_of(f) == RED for f in faces]
    new = np.zeros((2, 128), np.float32)
    new[0, RED] = new[1, BLUE] = 1.0
    assert people.hidden_face_mask(event, np.array([-1, -1]), new).tolist() == [True, False]
