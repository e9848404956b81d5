"""The per-process copy of an event's descriptors stays exact as faces come and go."""

import numpy as np
import pytest

from gallery.models import Face, Photo
from processing.backends.local import event_face_matrix

pytestmark = pytest.mark.django_db


def add_faces(event, count, seed):
    photo = Photo.objects.create(event=event, filename=f"{seed}.jpg", sha256=str(seed), format="JPEG")
    vectors = np.random.default_rng(seed).standard_normal((count, 128)).astype(np.float32)
    return Face.objects.bulk_create(
        Face(photo=photo, event=event, left=0, top=0, width=0.1, height=0.1, embedding=v.tobytes()) for v in vectors
    ), vectors


def test_new_faces_are_added_and_deleted_faces_dropped(event, django_assert_max_num_queries):
    first, first_vectors = add_faces(event, 5, 1)
    ids, photos, matrix = event_face_matrix(event)
    assert ids.tolist() == [f.pk for f in first]
    np.testing.assert_array_equal(matrix, first_vectors)

    second, second_vectors = add_faces(event, 3, 2)
    with django_assert_max_num_queries(2):  # the row count, then only the new rows
        ids, photos, matrix = event_face_matrix(event)
    assert ids.tolist() == [f.pk for f in first + second]
    np.testing.assert_array_equal(matrix[5:], second_vectors)
    assert set(photos.tolist()) == {first[0].photo_id, second[0].photo_id}

    with django_assert_max_num_queries(1):
        event_face_matrix(event)

    Face.objects.filter(pk=first[0].pk).delete()
    ids, _, matrix = event_face_matrix(event)
    assert first[0].pk not in ids.tolist() and len(matrix) == 7


def test_faces_without_descriptors_are_left_out(event):
    faces, _ = add_faces(event, 2, 3)
    Face.objects.filter(pk=faces[0].pk).update(embedding=None)
    ids, _, matrix = event_face_matrix(event)
    assert ids.tolist() == [faces[1].pk] and matrix.shape == (1, 128)


def test_neighbourhoods_are_kept_for_the_same_faces_and_dropped_with_new_ones(event):
    from processing.backends.local import event_faces, match_thresholds

    add_faces(event, 200, 4)
    thresholds = match_thresholds()
    faces = event_faces(event)
    shown = np.ones(len(faces.face_ids), bool)
    kept = faces.neighbourhoods(shown, faces.photo_ids, faces.vectors, thresholds)
    assert event_faces(event).neighbourhoods(shown, faces.photo_ids, faces.vectors, thresholds) is kept
    # Another set of faces shown (a group hidden) is another neighbourhood.
    fewer = shown.copy()
    fewer[:10] = False
    other = faces.neighbourhoods(fewer, faces.photo_ids[fewer], faces.vectors[fewer], thresholds)
    assert other is not kept and len(other.points) == 190
    add_faces(event, 1, 5)
    grown = event_faces(event)
    everything = np.ones(len(grown.face_ids), bool)
    assert grown.neighbourhoods(everything, grown.photo_ids, grown.vectors, thresholds) is not kept


def test_neighbourhoods_are_built_without_holding_the_descriptor_lock(event, monkeypatch):
    """A search of another event must not wait while one event's median is computed."""
    from processing.backends import local

    built_under_lock = []
    real = local.Neighbourhoods

    def spy(*args, **kwargs):
        built_under_lock.append(local._event_faces_lock.locked())
        return real(*args, **kwargs)

    monkeypatch.setattr(local, "Neighbourhoods", spy)
    add_faces(event, 200, 6)
    faces = local.event_faces(event)
    shown = np.ones(len(faces.face_ids), bool)
    kept = faces.neighbourhoods(shown, faces.photo_ids, faces.vectors, local.match_thresholds())
    assert built_under_lock == [False]
    assert faces.neighbourhoods(shown, faces.photo_ids, faces.vectors, local.match_thresholds()) is kept
