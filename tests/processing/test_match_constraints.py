"""processing.matching with attendees' corrections: "not me" as a cannot-link, "that's me" as a must-link.

The descriptors are those of tests.correction_scenes, where every distance is
known; each test first checks the answer without the correction, so that it
cannot pass by accident.
"""

from __future__ import annotations

import numpy as np

from processing.matching import MatchConstraints, MatchThresholds, _attach_pieces, match_arrivals, match_event
from tests.correction_scenes import SCENE, SELFIE, STRANGER, unit

NAMES = ["a1.png", "a2.png", "a3.png", "x1.png", "x2.png", "x3.png", "y1.png", "y2.png"]


def event_faces() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, list[int]]]:
    """Face ids 1..n, descriptors and photo ids of SCENE, and each photo's face ids."""
    ids: list[int] = []
    vectors: list[np.ndarray] = []
    photos: list[int] = []
    by_name: dict[str, list[int]] = {}
    for photo_id, name in enumerate(NAMES, start=1):
        for vector in SCENE[name]:
            ids.append(len(ids) + 1)
            vectors.append(vector)
            photos.append(photo_id)
            by_name.setdefault(name, []).append(ids[-1])
    return np.array(ids), np.stack(vectors), np.array(photos), by_name


def photos_of(found: dict[int, float], by_name: dict[str, list[int]]) -> set[str]:
    return {name for name, faces in by_name.items() if set(faces) & set(found)}


def test_not_me_keeps_the_face_and_its_look_alikes_out() -> None:
    ids, vectors, photos, by_name = event_faces()
    refs = {1: SELFIE[None]}
    assert photos_of(match_event(ids, vectors, photos, refs)[1], by_name) == {
        "a1.png", "a2.png", "a3.png", "x1.png", "x2.png", "x3.png",
    }  # fmt: skip

    constraints = MatchConstraints(rejected={1: [by_name["x1.png"][0]]})
    found = match_event(ids, vectors, photos, refs, constraints=constraints)[1]
    assert photos_of(found, by_name) == {"a1.png", "a2.png", "a3.png"}


def test_thats_me_brings_the_face_and_its_group() -> None:
    ids, vectors, photos, by_name = event_faces()
    refs = {1: SELFIE[None]}
    assert not {"y1.png", "y2.png"} & photos_of(match_event(ids, vectors, photos, refs)[1], by_name)

    y_face = by_name["y1.png"][0]
    found = match_event(ids, vectors, photos, refs, constraints=MatchConstraints(confirmed={1: [y_face]}))[1]
    assert {"y1.png", "y2.png"} <= photos_of(found, by_name)
    assert y_face in found and by_name["y1.png"][1] not in found  # the face they chose, not the one beside it
    assert {"a1.png", "a2.png", "a3.png"} <= photos_of(found, by_name)


def test_thats_me_does_not_bring_the_faces_of_its_group_that_are_far_from_the_selfie_too() -> None:
    ids, vectors, photos, by_name = event_faces()
    # Someone else in three more photos: 0.42 from y1 and y2, whom the attendee
    # confirms below, but 0.82 from the attendee's selfie.
    other = SCENE["y1.png"][0] - unit(30, 0.1)
    look_alike = [other + unit(40, 0.4) + unit(41 + k, 0.1) for k in range(3)]
    ids = np.concatenate([ids, len(ids) + 1 + np.arange(3)])
    vectors = np.concatenate([vectors, np.stack(look_alike)])
    photos = np.concatenate([photos, photos.max() + 1 + np.arange(3)])
    single = MatchThresholds().single
    assert all((np.linalg.norm(v - SCENE["y1.png"][0]) + np.linalg.norm(v - SELFIE)) / 2 > single for v in look_alike)
    assert all(np.linalg.norm(v - SCENE["y1.png"][0]) < single for v in look_alike)
    y_face = by_name["y1.png"][0]
    thats_me = MatchConstraints(confirmed={1: [y_face]})

    found = match_event(ids, vectors, photos, {1: SELFIE[None]}, constraints=thats_me)[1]

    assert {"y1.png", "y2.png"} <= photos_of(found, by_name)
    assert not set(ids[-3:].tolist()) & set(found)


def test_a_confirmed_face_goes_to_the_attendee_who_confirmed_it() -> None:
    ids, vectors, photos, by_name = event_faces()
    y_face = by_name["y1.png"][0]
    # Attendee 2's selfie is the very face attendee 1 says is theirs.
    refs = {1: SELFIE[None], 2: vectors[y_face - 1][None]}
    assert y_face in match_event(ids, vectors, photos, refs)[2]

    found = match_event(ids, vectors, photos, refs, constraints=MatchConstraints(confirmed={1: [y_face]}))
    assert y_face in found[1] and y_face not in found[2]


def test_the_answer_for_one_attendee_is_the_same_alone_or_with_everyone() -> None:
    ids, vectors, photos, by_name = event_faces()
    refs = {1: SELFIE[None], 2: STRANGER[None]}
    constraints = MatchConstraints(
        confirmed={1: [by_name["y1.png"][0]]}, rejected={1: [by_name["x1.png"][0]], 2: [by_name["a1.png"][0]]}
    )
    everyone = match_event(ids, vectors, photos, refs, constraints=constraints)
    for user in refs:
        assert match_event(ids, vectors, photos, refs, users=[user], constraints=constraints)[user] == everyone[user]


def test_a_new_face_nearer_a_rejected_face_than_the_group_is_not_given_at_once() -> None:
    group = np.stack([SELFIE, *SCENE["a1.png"], *SCENE["a2.png"]])
    new = np.stack(SCENE["x3.png"])
    assert 0 in match_arrivals(np.array([0]), new, {1: group})[1]

    rejected = {1: np.stack(SCENE["x1.png"])}
    assert match_arrivals(np.array([0]), new, {1: group}, rejected=rejected)[1] == {}
    # The attendee's own new face is still theirs.
    own = np.stack([SELFIE + unit(13, 0.2)])
    assert 0 in match_arrivals(np.array([0]), own, {1: group}, rejected=rejected)[1]


def _attendee_and(*others: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face ids, descriptors and photos: the attendee's three photos (0.2 from SELFIE), then one photo per `others`."""
    vectors = np.stack([SELFIE + unit(10 + k, 0.2) for k in range(3)] + list(others))
    return np.arange(1, len(vectors) + 1), vectors, np.arange(1, len(vectors) + 1)


def test_not_me_also_keeps_out_the_faces_nearer_the_rejected_one_than_the_selfie() -> None:
    # A look-alike 0.45 from the selfie, and a weak face of him that joins the
    # settled group on its own: a "not me" on the first stands for both.
    rejected = SELFIE + unit(1, 0.45)
    weak_twin = rejected + unit(2, 0.15)
    ids, vectors, photos = _attendee_and(rejected, weak_twin)
    qualities = np.array([1.0, 1.0, 1.0, 1.0, 0.3])
    refs = {1: SELFIE[None]}
    assert set(match_event(ids, vectors, photos, refs, face_qualities=qualities)[1]) == {1, 2, 3, 4, 5}

    constraints = MatchConstraints(rejected={1: [4]})
    found = match_event(ids, vectors, photos, refs, face_qualities=qualities, constraints=constraints)[1]
    assert set(found) == {1, 2, 3}


def test_thats_me_on_a_face_already_matched_does_not_bring_a_stranger_near_it() -> None:
    # The attendee's own face 0.4 from the selfie, and a stranger's four photos
    # 0.47 from that face but 0.62 from the selfie.
    confirmed = SELFIE + unit(13, 0.4)
    strangers = [confirmed + unit(14, 0.45) + unit(40 + k, 0.15) for k in range(4)]
    ids, vectors, photos = _attendee_and(confirmed, *strangers)
    refs = {1: SELFIE[None]}
    assert set(match_event(ids, vectors, photos, refs)[1]) == {1, 2, 3, 4}

    found = match_event(ids, vectors, photos, refs, constraints=MatchConstraints(confirmed={1: [4]}))[1]
    assert set(found) == {1, 2, 3, 4}


def test_a_group_near_the_selfie_and_the_attendees_own_anchor_still_joins_them() -> None:
    # Faces 0 and 1 are the selfie's group, 0.42 from it; 2 and 3 a group of their own, 0.5
    # from the selfie, 0.55 from a face the attendee confirmed, 0.8 from another attendee.
    roots = np.array([0, 0, 2, 2])
    to_people = np.array([[0.42, 0.7, 0.9]] * 2 + [[0.5, 0.55, 0.8]] * 2)
    photos = np.arange(4)
    own_anchor = np.array([False, False, True])
    members = _attach_pieces(
        np.array([0, 1]), roots, np.array([0, 8, 9]), photos, to_people, own_anchor, MatchThresholds()
    )
    assert members.tolist() == [0, 1, 2, 3]
    # Were the confirmed face another attendee's, the group would be too close to both to decide.
    rival = np.array([False, True, True])
    members = _attach_pieces(np.array([0, 1]), roots, np.array([0, 8, 9]), photos, to_people, rival, MatchThresholds())
    assert members.tolist() == [0, 1]
