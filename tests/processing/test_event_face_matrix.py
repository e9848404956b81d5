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


def test_neighbourhoods_are_brought_up_to_date_with_the_faces_added_since(event, monkeypatch):
    from processing import matching
    from processing.backends.local import event_faces, match_thresholds

    add_faces(event, 200, 7)
    thresholds = match_thresholds()
    faces = event_faces(event)
    kept = faces.neighbourhoods(np.ones(200, bool), faces.photo_ids, faces.vectors, thresholds)
    calls = []
    real = matching.nearest_beyond_floor
    monkeypatch.setattr(
        matching, "nearest_beyond_floor", lambda q, f, *a: calls.append((len(q), len(f))) or real(q, f, *a)
    )
    add_faces(event, 3, 8)
    grown = event_faces(event)
    found = grown.neighbourhoods(np.ones(203, bool), grown.photo_ids, grown.vectors, thresholds)
    # The 200 faces measured before against the 3 new ones; the new ones (all in the median's sample) against all.
    assert found is not kept and calls == [(200, 3), (3, 203)]
    # A group hidden since: the faces shown are not the earlier ones plus new ones, so all are measured again.
    calls.clear()
    fewer = np.ones(203, bool)
    fewer[5] = False
    grown.neighbourhoods(fewer, grown.photo_ids[fewer], grown.vectors[fewer], thresholds)
    assert calls == [(202, 202)]
