"""processing.matching: event-wide matching on hand-built descriptors.

Descriptors are placed on orthogonal axes so that every distance in a scenario
is known exactly; each test first checks that the bare model (one selfie, one
threshold) gets the scenario wrong, so that it cannot pass by accident.
"""

from __future__ import annotations

import numpy as np
import pytest

from processing.matching import (
    DESCRIPTOR_SIZE,
    NEIGHBOURHOOD_EVENT_COHORTS,
    MatchThresholds,
    Neighbourhoods,
    _attach_pieces,
    average_linkage,
    crowding,
    match_arrivals,
    match_event,
    match_threshold,
    nearest_beyond_floor,
    unclaimed_groups,
)


def axis(index: int, length: float = 1.0) -> np.ndarray:
    vector = np.zeros(DESCRIPTOR_SIZE, np.float32)
    vector[index] = length
    return vector


def scene(faces: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo id, descriptor) pairs -> face ids 1..n, vectors, photo ids."""
    ids = np.arange(1, len(faces) + 1)
    vectors = np.stack([v for _, v in faces])
    photos = np.array([p for p, _ in faces])
    return ids, vectors, photos


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def test_faces_that_agree_with_each_other_rescue_a_face_the_selfie_alone_misses() -> None:
    single = MatchThresholds().single
    selfie = axis(0, 0.47)
    own = [axis(k, 0.3) for k in range(1, 7)]
    profile = axis(7, 0.4)  # further from the selfie, close to the other five
    assert single < distance(selfie, profile) < MatchThresholds().radius
    ids, vectors, photos = scene([(k, v) for k, v in enumerate([*own, profile], start=1)])

    assert 7 not in match_threshold(ids, vectors, {1: selfie[None]}, single)[1]
    assert set(match_event(ids, vectors, photos, {1: selfie[None]})[1]) == set(range(1, 8))


def test_average_linkage_merges_in_the_order_a_full_scan_would() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        count = int(rng.integers(2, 14))
        points = rng.normal(size=(count, 3)) * 0.35
        distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
        cannot_link = np.triu(rng.random((count, count)) < 0.1, 1)
        cannot_link |= cannot_link.T
        sizes = rng.integers(1, 4, count).astype(float)
        assert average_linkage(distances, cannot_link, sizes, 0.59, 0.49).tolist() == full_scan_linkage(
            distances, cannot_link, sizes, 0.59, 0.49
        )


def full_scan_linkage(
    distances: np.ndarray, cannot_link: np.ndarray, sizes: np.ndarray, single: float, group: float
) -> list[int]:
    """average_linkage's rule, the plain way: every merge scans every pair of live clusters for the closest allowed."""
    members = {k: [k] for k in range(len(distances))}
    weight = {k: float(sizes[k]) for k in members}
    while True:
        found = None
        for a in sorted(members):
            for b in sorted(members):
                if b <= a or cannot_link[np.ix_(members[a], members[b])].any():
                    continue
                pairs = np.outer([sizes[k] for k in members[a]], [sizes[k] for k in members[b]])
                mean = float((distances[np.ix_(members[a], members[b])] * pairs).sum() / pairs.sum())
                limit = group + (single - group) / np.sqrt(min(weight[a], weight[b]))
                if mean <= limit and (found is None or mean < found[0] - 1e-12):
                    found = (mean, a, b)
        if found is None:
            break
        _, a, b = found
        members[a] += members.pop(b)
        weight[a] += weight.pop(b)
    root = [0] * len(distances)
    for a, items in members.items():
        for k in items:
            root[k] = a
    return root


def test_a_look_alike_who_forms_a_group_of_his_own_is_left_out() -> None:
    selfie = axis(0, 0.36) + axis(1, 0.08)
    own = [axis(1, 0.35) + axis(k, 0.25) for k in range(10, 16)]
    look_alike = [axis(1, -0.35) + axis(k, 0.2) for k in range(20, 26)]
    assert all(distance(selfie, v) < 0.60 for v in look_alike)
    # Clearly further from the selfie than the attendee's own faces are.
    slack = MatchThresholds().piece_slack
    assert distance(selfie, look_alike[0]) - distance(selfie, own[0]) > slack
    ids, vectors, photos = scene([(k, v) for k, v in enumerate(own + look_alike, start=1)])

    bare = match_threshold(ids, vectors, {1: selfie[None]}, 0.60)[1]
    assert set(range(7, 13)) <= set(bare)
    assert set(match_event(ids, vectors, photos, {1: selfie[None]})[1]) == set(range(1, 7))


def test_an_attendee_counts_once_per_photo_and_a_face_belongs_to_one_attendee() -> None:
    first, second = axis(0, 0.3), axis(1, 0.3)
    faces = [
        (1, axis(0, 0.3) + axis(10, 0.2)),
        (1, axis(0, 0.3) + axis(11, 0.2)),  # the same person twice in one photo: a mirror, a poster
        (2, axis(1, 0.3) + axis(12, 0.2)),
        (3, axis(0, 0.15) + axis(1, 0.15) + axis(13, 0.1)),  # close to both attendees
    ]
    ids, vectors, photos = scene(faces)
    found = match_event(ids, vectors, photos, {1: first[None], 2: second[None]})

    assert len({1, 2} & set(found[1])) == 1
    assert set(found[2]) >= {3}
    assert not set(found[1]) & set(found[2])


def test_the_answer_does_not_depend_on_arrival_order_or_on_who_is_asked_for() -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(6, DESCRIPTOR_SIZE)).astype(np.float32) * 0.06
    faces = []
    for photo in range(40):
        for person in rng.choice(6, size=3, replace=False):
            faces.append((photo, centres[person] + rng.normal(size=DESCRIPTOR_SIZE).astype(np.float32) * 0.03))
    ids, vectors, photos = scene(faces)
    selfies = {
        user: (centres[user] + rng.normal(size=DESCRIPTOR_SIZE).astype(np.float32) * 0.03)[None] for user in range(4)
    }

    everyone = match_event(ids, vectors, photos, selfies)
    assert all(everyone[user] for user in selfies)
    order = rng.permutation(len(ids))
    shuffled = match_event(ids[order], vectors[order], photos[order], dict(reversed(list(selfies.items()))))
    assert shuffled == everyone
    for user in selfies:
        assert match_event(ids, vectors, photos, selfies, users={user}) == {user: everyone[user]}
    assert match_event(ids, vectors, photos, selfies) == everyone


def test_no_faces_or_no_selfies_match_nothing() -> None:
    ids, vectors, photos = scene([(1, axis(0, 0.3))])
    empty = np.zeros((0, DESCRIPTOR_SIZE), np.float32)

    assert match_event(ids, vectors, photos, {1: empty}) == {1: {}}
    assert match_event(ids[:0], vectors[:0], photos[:0], {1: axis(0, 0.3)[None]}) == {1: {}}


def test_a_new_photo_is_decided_against_each_attendees_group_at_once() -> None:
    selfie = axis(0, 0.5)
    group = np.stack([selfie, *(axis(k, 0.3) for k in range(1, 7))])
    profile = axis(7, 0.35)  # beyond the bar from the selfie alone, close to the group
    stranger = axis(8, 0.6)
    twin = axis(9, 0.37)  # nearly as close as the profile: the attendee is in the photo once
    assert distance(selfie, profile) > 0.60

    found = match_arrivals(np.array([11, 12, 13]), np.stack([profile, stranger, twin]), {1: group, 2: group[:0]})

    assert found == {1: {11: found[1][11]}, 2: {}}
    assert 0 < found[1][11] < 1


def test_a_second_face_in_one_photo_does_not_split_the_attendee_off() -> None:
    # Near copies of the selfie, a few of them twice in one photo: the second
    # copy starts a group the first cannot join, and others follow it.
    rng = np.random.default_rng(1)
    selfie = rng.normal(size=DESCRIPTOR_SIZE).astype(np.float32)
    selfie /= np.linalg.norm(selfie)
    copies = selfie + rng.normal(0, 0.02, (60, DESCRIPTOR_SIZE)).astype(np.float32)
    photos = np.concatenate([np.arange(50), np.arange(10)])
    ids = np.arange(1, 61)

    found = match_event(ids, copies, photos, {1: selfie[None]})[1]

    assert {int(photos[i - 1]) for i in found} == set(range(50))
    assert len(found) == 50


def test_a_weak_face_joins_only_on_stronger_evidence_and_an_unusable_one_never() -> None:
    selfie = axis(0, 0.3)
    borderline = axis(0, 0.3) + axis(5, 0.57)  # within the lone-face bar, not within the weak one
    close = axis(0, 0.3) + axis(6, 0.45)
    assert 0.55 < distance(selfie, borderline) < 0.60
    refs = {1: selfie[None]}

    def matched(face: np.ndarray, quality: float) -> bool:
        ids, vectors, photos = scene([(1, face)])
        return bool(match_event(ids, vectors, photos, refs, face_qualities=np.array([quality]))[1])

    assert matched(borderline, 0.9)
    assert not matched(borderline, 0.3)
    assert matched(close, 0.3)
    assert not matched(close, 0.1)


def test_weak_faces_of_a_look_alike_do_not_form_a_group_that_takes_the_selfie() -> None:
    selfie = axis(0, 0.3)
    # 0.41 from the selfie: the stranger's faces are not far further from it than these.
    own = [axis(0, 0.3) + axis(2, 0.33) + axis(k, 0.25) for k in range(20, 23)]
    # Close to each other, each 0.51 from the selfie: as clear faces they make
    # a group that joins it, the way a look-alike's photos pull a group over.
    stranger = [axis(0, 0.3) + axis(1, 0.5) + axis(k, 0.1) for k in range(10, 14)]
    ids, vectors, photos = scene([(k, v) for k, v in enumerate(own + stranger, start=1)])
    refs = {1: selfie[None]}
    strong = match_event(ids, vectors, photos, refs)[1]
    assert set(range(4, 8)) & set(strong)

    qualities = np.array([0.9] * len(own) + [0.3] * len(stranger))
    weak = match_event(ids, vectors, photos, refs, face_qualities=qualities)[1]

    assert set(weak) == {1, 2, 3}


def test_a_new_weak_face_needs_a_closer_group_to_join_at_once() -> None:
    group = np.stack([axis(0, 0.3)])
    face = axis(0, 0.3) + axis(5, 0.49)

    assert match_arrivals(np.array([1]), face[None], {1: group})[1] == {1: pytest.approx(1 - 0.49 / 1.2, abs=1e-3)}
    assert match_arrivals(np.array([1]), face[None], {1: group}, face_qualities=np.array([0.3]))[1] == {}


def test_a_new_face_joins_at_once_only_within_the_live_bar() -> None:
    """Until the event-wide pass, a guest sees only faces nearer than `live`; the pass takes the rest."""
    selfie = axis(0, 0.0)
    face = axis(1, 0.55)  # within `single`, beyond `live`
    thresholds = MatchThresholds()
    assert thresholds.live < 0.55 < thresholds.single

    assert match_arrivals(np.array([7]), face[None], {1: selfie[None]})[1] == {}
    assert set(match_arrivals(np.array([7]), face[None], {1: selfie[None]}, MatchThresholds(live=0.59))[1]) == {7}
    assert set(match_event(np.array([7]), face[None], np.array([1]), {1: selfie[None]})[1]) == {7}


def test_unclaimed_groups_count_people_seen_in_two_photos() -> None:
    person = [axis(0, 0.3) + axis(k, 0.1) for k in range(10, 13)]
    lone = [axis(1, 0.6)]
    same_photo = [axis(2, 0.6), axis(2, 0.6) + axis(40, 0.05)]
    vectors = np.stack(person + lone + same_photo)
    photos = np.array([1, 2, 3, 4, 5, 5])

    assert unclaimed_groups(vectors, photos, 0.48) == (3, 1)


RAW = MatchThresholds(cohort=0)


def crowding_of(queries: np.ndarray, faces: np.ndarray, *args: object) -> np.ndarray:
    return crowding(nearest_beyond_floor(queries, faces, *args))  # type: ignore[arg-type]


def test_a_neighbourhood_is_the_mean_distance_to_the_nearest_faces_beyond_the_floor() -> None:
    thresholds = MatchThresholds(cohort=3, cohort_floor=0.5)
    query = axis(0, 0.0)[None]
    # Two of the person's own faces (under the floor), then strangers at 0.6, 0.7, 0.8, 0.9.
    faces = np.stack([axis(1, 0.2), axis(2, 0.3), *(axis(3 + k, 0.6 + 0.1 * k) for k in range(4))])
    assert crowding_of(query, faces, thresholds)[0] == pytest.approx(0.7, abs=1e-5)
    # The faces of the query's own photo are no neighbours: the 0.6 one is left out.
    photos = np.array([1, 2, 3, 4, 5, 6])
    assert crowding_of(query, faces, thresholds, np.array([3]), photos)[0] == pytest.approx(0.8, abs=1e-5)


def test_too_few_faces_beyond_the_floor_make_no_neighbourhood() -> None:
    faces = np.stack([axis(1, 0.2), axis(2, 0.3), axis(3, 0.6), axis(4, 0.7)])
    assert np.isnan(crowding_of(axis(0, 0.0)[None], faces, MatchThresholds(cohort=3))[0])
    assert np.isnan(crowding_of(axis(0, 0.0)[None], faces, RAW)[0])


def cloud(centre: np.ndarray, spacing: float, count: int, seed: int) -> list[np.ndarray]:
    """`count` faces around `centre`, about `spacing` from each other (random directions in 128-d)."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(size=(count, DESCRIPTOR_SIZE)) * spacing / np.sqrt(2 * DESCRIPTOR_SIZE)
    return [(centre + offset).astype(np.float32) for offset in offsets]


def event_size() -> int:
    """The fewest faces for which an event reads distances against neighbourhoods."""
    return NEIGHBOURHOOD_EVENT_COHORTS * int(MatchThresholds().cohort)


def crowded_scene(others: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """A crowd of look-alikes near the selfie `axis(0, 0.0)`, then strangers far from everyone.

    Returns the crowd's descriptors and the scene's face ids, descriptors and
    photos, the crowd first. The crowd is two cohorts of strangers near one
    point: about 0.62 from each other and 0.56 from the selfie, under
    `single`. Where many people look alike, each is as near the selfie as one
    of the guest's own photos. The other strangers (`others`, at least
    enough for neighbourhoods) are of the usual crowding.
    """
    crowd = cloud(axis(0, 0.35), 0.62, 2 * int(MatchThresholds().cohort), seed=1)
    rest = cloud(axis(1, 2.0), 1.6, max(others, event_size()), seed=2)
    return crowd, *scene([(k + 1, v) for k, v in enumerate([*crowd, *rest])])


def test_look_alikes_from_a_crowded_neighbourhood_are_not_taken() -> None:
    selfie = axis(0, 0.0)
    crowd, ids, vectors, photos = crowded_scene()
    assert np.mean([distance(selfie, face) for face in crowd]) < MatchThresholds().single
    # Read raw, the crowd is taken: its faces are within the bar.
    assert match_event(ids, vectors, photos, {1: selfie[None]}, RAW)[1]
    assert match_event(ids, vectors, photos, {1: selfie[None]})[1] == {}
    # In a small event a cohort is not a neighbourhood: distances are read raw.
    small = len(crowd) + 20
    small_event = (ids[:small], vectors[:small], photos[:small])
    assert match_event(*small_event, {1: selfie[None]}) == match_event(*small_event, {1: selfie[None]}, RAW)


def test_a_far_own_face_in_a_sparse_neighbourhood_is_found() -> None:
    selfie = axis(0, 0.0)
    own = axis(1, 0.61)
    # Most of the event is a crowd of look-alikes far from the guest (about
    # 0.57 apart): against it, the guest's part of the event is sparse.
    crowd = cloud(axis(2, 1.0), 0.57, event_size(), seed=3)
    ids, vectors, photos = scene([(k + 1, v) for k, v in enumerate([own, *crowd])])
    assert distance(selfie, own) > MatchThresholds().single
    assert 1 not in match_event(ids, vectors, photos, {1: selfie[None]}, RAW)[1]
    assert set(match_event(ids, vectors, photos, {1: selfie[None]})[1]) == {1}


def test_an_event_of_the_usual_crowding_reads_distances_as_they_are() -> None:
    selfie = axis(0, 0.0)
    faces = [axis(0, 0.5), *cloud(axis(1, 1.5), 1.0, event_size(), seed=4)]
    ids, vectors, photos = scene([(k + 1, v) for k, v in enumerate(faces)])
    found = match_event(ids, vectors, photos, {1: selfie[None]})[1]
    assert set(found) == set(match_event(ids, vectors, photos, {1: selfie[None]}, RAW)[1]) == {1}


def test_kept_neighbourhoods_give_the_same_answer_and_compute_each_scale_once() -> None:
    selfie = axis(0, 0.0)
    # Enough faces that the sample for the median is not the whole event.
    _, ids, vectors, photos = crowded_scene(others=1100)
    kept = Neighbourhoods(vectors, photos, MatchThresholds())
    first = match_event(ids, vectors, photos, {1: selfie[None]}, neighbourhoods=kept)
    read = kept.known.copy()
    assert read.any() and not read.all()  # only the faces near the selfie
    assert match_event(ids, vectors, photos, {1: selfie[None]}, neighbourhoods=kept) == first
    assert (kept.known == read).all()
    assert first == match_event(ids, vectors, photos, {1: selfie[None]})


def test_neighbourhoods_grown_from_earlier_ones_measure_the_new_faces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from processing import matching

    _, ids, vectors, photos = crowded_scene(others=1100)
    # A guest in the crowd's part of the event, and one who is the last face to arrive.
    refs = {1: axis(0, 0.0)[None], 2: (vectors[-1] + axis(5, 0.1))[None]}
    held = len(ids) - 10  # a photo's faces arrive after the earlier search
    earlier = Neighbourhoods(vectors[:held], photos[:held], MatchThresholds())
    match_event(ids[:held], vectors[:held], photos[:held], refs, neighbourhoods=earlier)
    calls: list[tuple[int, int]] = []
    real = matching.nearest_beyond_floor

    def spy(queries: np.ndarray, faces: np.ndarray, *args: object) -> np.ndarray:
        calls.append((len(queries), len(faces)))
        return real(queries, faces, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(matching, "nearest_beyond_floor", spy)
    grown = Neighbourhoods(vectors, photos, MatchThresholds(), earlier)
    # The faces measured before are measured against the 10 new faces; of the
    # others, only new faces in the median's sample are measured.
    assert calls[0] == (int(earlier.measured.sum()), 10)
    assert sum(queries for queries, _ in calls[1:]) <= 10
    assert grown.measured[:held][earlier.measured].all()

    fresh = Neighbourhoods(vectors, photos, MatchThresholds())
    assert grown.median == pytest.approx(fresh.median)
    everything = np.arange(len(ids))
    grown.read(everything)
    fresh.read(everything)
    np.testing.assert_allclose(grown.points, fresh.points, rtol=1e-5)
    found = match_event(ids, vectors, photos, refs, neighbourhoods=grown)
    assert found[2].keys() == {ids[-1]}
    assert {u: f.keys() for u, f in found.items()} == {
        u: f.keys() for u, f in match_event(ids, vectors, photos, refs).items()
    }


def test_a_weak_face_joins_on_raw_distances_whatever_its_neighbourhood() -> None:
    selfie = axis(0, 0.0)
    own = [axis(k, 0.3) for k in range(20, 23)]
    # A small, blurred face of the guest: 0.52 from the group on average, under
    # the weak bar (0.54). Blur draws descriptors to a crowded part of the
    # event, here a crowd of strangers around it (all beyond `radius`).
    weak = axis(1, 0.45)
    crowd = cloud(weak + axis(2, 0.4), 0.62, 2 * int(MatchThresholds().cohort), seed=1)
    rest = cloud(axis(3, 2.0), 0.8, event_size(), seed=2)
    ids, vectors, photos = scene([(k + 1, v) for k, v in enumerate([*own, weak, *crowd, *rest])])
    qualities = np.ones(len(ids))
    qualities[3] = 0.3
    neighbourhoods = Neighbourhoods(vectors, photos, MatchThresholds())
    neighbourhoods.read(np.arange(4))
    assert neighbourhoods.points[3, DESCRIPTOR_SIZE] < 0.85  # crowded: a strong face there must be nearer

    found = match_event(
        ids, vectors, photos, {1: selfie[None]}, face_qualities=qualities, neighbourhoods=neighbourhoods
    )
    assert set(found[1]) == {1, 2, 3, 4}
    raw = match_event(ids, vectors, photos, {1: selfie[None]}, RAW, face_qualities=qualities)
    assert found[1][4] == pytest.approx(raw[1][4])


def test_a_group_as_near_a_far_selfie_as_the_selfies_own_group_joins_it() -> None:
    # Faces 0-2 are the selfie's group, 3 and 4 a group of their own; another
    # attendee's selfie is far from both. The selfie is 0.56 from its own
    # group on average: a poor selfie, far from all of its owner's faces.
    thresholds = MatchThresholds()
    roots = np.array([0, 0, 0, 4, 4])
    photos = np.arange(5)
    rival = np.array([False, True])

    def to_people(own_group: float, piece: float) -> np.ndarray:
        return np.array([[own_group, 0.9]] * 3 + [[piece, 0.9]] * 2)

    assert thresholds.attach < 0.57 < thresholds.single
    members = _attach_pieces(
        np.array([0, 1, 2]), roots, np.array([0, 9]), photos, to_people(0.56, 0.57), rival, thresholds
    )
    assert members.tolist() == [0, 1, 2, 3, 4]
    # The same group beside a selfie its owner's faces are near is clearly further than they are: a stranger's.
    members = _attach_pieces(
        np.array([0, 1, 2]), roots, np.array([0, 9]), photos, to_people(0.45, 0.57), rival, thresholds
    )
    assert members.tolist() == [0, 1, 2]


def test_a_group_within_attach_stays_out_when_the_attendees_own_group_is_far_nearer_the_selfie() -> None:
    # Faces 0-2 are the selfie's group, 3 and 4 a group of their own within
    # `attach` of the selfie; another attendee's selfie is far from both.
    thresholds = MatchThresholds()
    roots = np.array([0, 0, 0, 3, 3])
    photos = np.arange(5)
    rival = np.array([False, True])

    def to_people(own_group: float) -> np.ndarray:
        return np.array([[own_group, 0.9]] * 3 + [[0.51, 0.9]] * 2)

    assert thresholds.attach >= 0.51
    # The attendee's own faces are 0.36 from the selfie: a group 0.15 further is a look-alike stranger's.
    assert thresholds.attach_slack < 0.51 - 0.36
    members = _attach_pieces(np.array([0, 1, 2]), roots, np.array([0, 9]), photos, to_people(0.36), rival, thresholds)
    assert members.tolist() == [0, 1, 2]
    # Beside an own group 0.10 nearer the selfie, the same group is the attendee in other light.
    assert thresholds.piece_slack < 0.51 - 0.41
    members = _attach_pieces(np.array([0, 1, 2]), roots, np.array([0, 9]), photos, to_people(0.41), rival, thresholds)
    assert members.tolist() == [0, 1, 2, 3, 4]


def test_a_group_seen_beside_the_attendee_is_someone_else_in_all_its_photos() -> None:
    # Faces 0-2 are the selfie's group, in photos 0-2; faces 3 and 4 a group
    # near the selfie, in photos 2 and 3: in photo 2 it stands beside the attendee.
    roots = np.array([0, 0, 0, 3, 3])
    to_people = np.array([[0.4, 0.9]] * 3 + [[0.5, 0.9]] * 2)
    rival = np.array([False, True])
    members = _attach_pieces(
        np.array([0, 1, 2]), roots, np.array([0, 9]), np.array([0, 1, 2, 2, 3]), to_people, rival, MatchThresholds()
    )
    assert members.tolist() == [0, 1, 2]
    # Seen in other photos only, the same group is the attendee's.
    members = _attach_pieces(
        np.array([0, 1, 2]), roots, np.array([0, 9]), np.array([0, 1, 2, 3, 4]), to_people, rival, MatchThresholds()
    )
    assert members.tolist() == [0, 1, 2, 3, 4]


def test_a_look_alike_attendee_whose_own_faces_are_nearer_is_no_contender_for_a_group() -> None:
    # Faces 0-2 are the attendee's group, far from a poor selfie; 3 and 4 a
    # group as near it; 5-7 the group of another attendee, whose selfie is
    # only 0.01 further from faces 3 and 4 than the attendee's is.
    thresholds = MatchThresholds()
    roots = np.array([0, 0, 0, 3, 3, 5, 5, 5])
    photos = np.arange(8)
    rival = np.array([False, True])

    def to_people(rivals_own: float) -> np.ndarray:
        return np.array([[0.56, 0.9]] * 3 + [[0.57, 0.58]] * 2 + [[0.9, rivals_own]] * 3)

    assert thresholds.margin > 0.58 - 0.57
    # The other attendee's own faces are far nearer his selfie than this group is: it is not his.
    members = _attach_pieces(np.array([0, 1, 2]), roots, np.array([0, 5]), photos, to_people(0.40), rival, thresholds)
    assert members.tolist() == [0, 1, 2, 3, 4]
    # Were his own faces as far from his selfie, the group could be either's.
    members = _attach_pieces(np.array([0, 1, 2]), roots, np.array([0, 5]), photos, to_people(0.55), rival, thresholds)
    assert members.tolist() == [0, 1, 2]
