"""Event-wide face matching for descriptor backends: who is in which photo.

The contract: `match_event` is a pure function of the event's faces (id,
photo, descriptor) and the attendees' selfies. It does not depend on the order
photos arrived in, so recomputing it after new photos or selfies gives the same
answer as a batch run, and re-running it is idempotent.

How it decides. One selfie is a weak reference (a single pair of descriptors at
the usual 0.6 threshold confuses look-alikes), but an attendee appears in many
photos of the same event, and those faces agree with each other. So the faces
are clustered together with the selfies, and an attendee's photos are the faces
in the group that holds their selfie:

- average linkage: two groups merge when the mean distance over all their
  pairs is small enough, which does not chain from one person to a look-alike
  the way single links do;
- the allowed mean shrinks as both groups grow, from `single` (a lone face or
  selfie joining a group) towards `group`: the mean of many pairs is a far
  steadier estimate than one pair, so two large groups that are still apart
  are two people;
- a group never holds two faces of one photo, nor two attendees' selfies;
- a group without a selfie (the same person in other light, or years apart
  in a portrait) joins the attendee whose selfie it is close to on average
  (`attach`, unless the attendee's own group is far nearer it, `attach_slack`;
  or about as close as the attendee's own group, `piece_slack`)
  when every other attendee's selfie is clearly further (`margin`);
- a distance is read against how crowded the faces' neighbourhoods are
  (`Neighbourhoods`): where many strangers look alike, faces must be nearer
  to count as one person, so the bars above hold where strangers outnumber
  guests.

The clustering runs per attendee, on the faces within `radius` of their
selfies and the selfies of the other attendees near those faces, so its cost
follows the attendee's neighbourhood rather than the event's size, and a search
for one attendee computes only what it needs. A face claimed by two attendees
goes to the one whose group it is closer to on average; the attendees who could
claim the same faces are always decided together, so asking for one attendee
gives the same answer as asking for everyone.

Attendees' corrections are constraints (`MatchConstraints`): a face an
attendee said is not theirs cannot link with them, so neither it nor a group
it is in joins them, nor a face nearer it than to the rest of their group; a
face they said is theirs is theirs, and when the group of their selfies does
not hold it already, it anchors a group of its own for them, so its
look-alikes come along (those near the attendee on average over that face and
the selfies, within `single`). The constraint logic is in the functions after
`match_event`.

Face quality (processing.detection: size, sharpness, detector score) decides
what a face may do. A weak face (below `WEAK_QUALITY`) does not take part in
the clustering, so it can never pull a group towards a stranger; once the
groups are settled it joins the attendee's group only if its mean distance to
the group is `weak_margin` below the bar for a lone face, on raw distances: a
small or blurred face's descriptor drifts to a crowded part of descriptor
space (on the tuning crowd events, weak faces' median scale is 0.97-0.98
against 1.00, bench/match_errors.py), so its neighbourhood tells of its blur
rather than of look-alikes. A face below `UNUSABLE_QUALITY` is not matched at all.

Thresholds were tuned on composite events built from shared/faces-lfw
portraits (bench/composite_event.py), with a third of the identities held out
for the final check; see the README.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

DESCRIPTOR_SIZE = 128


@dataclass(frozen=True)
class MatchThresholds:
    single: float = 0.59
    group: float = 0.49
    radius: float = 0.65
    attach: float = 0.53
    margin: float = 0.10
    # A group without a selfie also joins when it is at most this much further
    # from the selfie, on average, than the selfie's own group (`_attach_pieces`).
    piece_slack: float = 0.06
    # A group within `attach` of the selfie still stays out when it is more than
    # this much further from it, on average, than the selfie's own group: a
    # look-alike stranger, where the attendee's own faces are far nearer.
    attach_slack: float = 0.12
    # How much closer than `single` a weak face must be to join a group.
    weak_margin: float = 0.05
    # Distances are read relative to how crowded each end's neighbourhood is
    # (`crowding`): the mean distance to the `cohort` nearest
    # faces of other photos that are at least `cohort_floor` away, against the
    # event's median. 0 reads raw distances.
    cohort: float = 30
    cohort_floor: float = 0.55
    # The bar for a face of a new photo to join a group at once (`match_arrivals`),
    # stricter than `single`: that answer is shown until the event-wide pass, with
    # no other face to compete for the new one, so a look-alike would be shown too.
    live: float = 0.51


# Face quality bands (0..1, processing.detection.face_quality).
WEAK_QUALITY = 0.5
UNUSABLE_QUALITY = 0.15


def quality_band(quality: float) -> str:
    """ "strong", "weak" or "unusable": what a face of this quality may do in matching."""
    if quality >= WEAK_QUALITY:
        return "strong"
    return "weak" if quality >= UNUSABLE_QUALITY else "unusable"


@dataclass(frozen=True)
class MatchConstraints:
    """Attendees' corrections as constraints on the clustering, by face id.

    `confirmed[user]`: faces the attendee said are theirs ("that's me"), a
    must-link: the face itself always goes to the attendee. One that the
    group of their selfies does not hold already also anchors a group of its
    own for them, kept apart from the selfie's group while clustering and
    joined to it in the answer, so that it neither drags the selfie's group
    away nor is left out; of that group, only the faces within `single` of
    the attendee on average over the confirmed face and the selfies.
    `rejected[user]`: faces the attendee said are not theirs ("not me"), a
    cannot-link with each of the attendee's anchors, so that the face and any
    group it is in never join them; nor does a face nearer to it than to the
    rest of its group on average.
    """

    confirmed: Mapping[int, Collection[int]] = field(default_factory=dict)
    rejected: Mapping[int, Collection[int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.confirmed.values()) or any(self.rejected.values())


# A lone face close to the selfie but not to its group is not evidence of a second group.
PIECE_MIN_SIZE = 2


def distance_to_similarity(distance: float | np.ndarray) -> np.ndarray:
    """Map a descriptor distance to a 0..1 score where higher means more alike."""
    return np.clip(1.0 - np.asarray(distance, dtype=np.float32) / 1.2, 0.0, 1.0)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(squared, 0.0)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distances between rows: descriptors, or points (a descriptor and its neighbourhood scale, `_points`)."""
    if a.shape[1] == DESCRIPTOR_SIZE:
        return np.sqrt(_squared_distances(a, b))
    raw = np.sqrt(_squared_distances(a[:, :DESCRIPTOR_SIZE], b[:, :DESCRIPTOR_SIZE]))
    return raw / np.sqrt(a[:, DESCRIPTOR_SIZE, None] * b[None, :, DESCRIPTOR_SIZE])


def _raw_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Descriptor distances between rows of descriptors or points, without the neighbourhood scale."""
    return np.sqrt(_squared_distances(a[:, :DESCRIPTOR_SIZE], b[:, :DESCRIPTOR_SIZE]))


def nearest_beyond_floor(
    queries: np.ndarray,
    faces: np.ndarray,
    thresholds: MatchThresholds,
    query_photos: np.ndarray | None = None,
    photos: np.ndarray | None = None,
    chunk: int = 128,
) -> np.ndarray:
    """Each query's distances to its `cohort` nearest `faces` at least `cohort_floor` away, ascending.

    Returns a (queries, cohort) float32 array, padded with inf where fewer such
    faces exist. A face's own photo is left out (`query_photos`, `photos`).
    The nearest of two sets of faces are the nearest of each set's nearest,
    so a face's row can be brought up to date with new faces alone.
    """
    count = max(int(thresholds.cohort), 0)
    found = np.full((len(queries), count), np.inf, np.float32)
    if count == 0 or not len(faces):
        return found
    kept = min(count, len(faces))
    for start in range(0, len(queries), chunk):
        block = np.sqrt(_squared_distances(queries[start : start + chunk], faces))
        if query_photos is not None and photos is not None:
            block[query_photos[start : start + chunk, None] == photos[None, :]] = np.inf
        block[block < thresholds.cohort_floor] = np.inf
        nearest = block if kept == block.shape[1] else np.partition(block, kept - 1, axis=1)[:, :kept]
        found[start : start + chunk, :kept] = np.sort(nearest, axis=1)
    return found


def crowding(nearest: np.ndarray) -> np.ndarray:
    """How crowded each face's neighbourhood is, as a distance: the mean of its row of `nearest_beyond_floor`.

    Faces nearer than `cohort_floor` are most often the person's own, and
    however many photos they are in, they do not make a crowd. NaN where the
    row is not full (fewer such faces exist).
    """
    if nearest.shape[1] == 0:
        return np.full(len(nearest), np.nan)
    full = np.isfinite(nearest).all(1)
    return np.where(full, np.where(full[:, None], nearest, 0).mean(1), np.nan)


def _points(vectors: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Descriptors with their neighbourhood scale as one more column; `_distances` divides by both ends' scales."""
    return np.hstack([vectors, np.asarray(scales, np.float32).reshape(-1, 1)])


def nearest_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The smallest distance between a row of `a` and a row of `b`."""
    return float(np.sqrt(_squared_distances(np.asarray(a, np.float32), np.asarray(b, np.float32)).min()))


def nearest_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of `a`, its distance to the nearest row of `b`."""
    return np.sqrt(_squared_distances(np.asarray(a, np.float32), np.asarray(b, np.float32)).min(1))


def average_linkage(
    distances: np.ndarray, cannot_link: np.ndarray, sizes: np.ndarray, single: float, group: float
) -> np.ndarray:
    """Cluster items given their mean pairwise distances; returns each item's cluster root.

    `sizes` are the items' weights (a pre-merged group of k selfies has k).
    Two clusters of sizes a and b merge when their mean distance is at most
    group + (single - group) / sqrt(min(a, b)) and no cannot-link pair spans
    them; the closest allowed pair merges first.
    """
    count = len(distances)
    root = np.arange(count)
    if count < 2:
        return root
    mean = np.array(distances, np.float64)
    blocked = np.array(cannot_link, bool)
    np.fill_diagonal(blocked, True)
    size = np.array(sizes, np.float64)
    span = single - group
    limit = group + span / np.sqrt(np.minimum(size[:, None], size[None, :]))
    allowed = np.where(blocked | (mean > limit), np.inf, mean)
    merged = np.zeros(count, bool)
    # Each row keeps its best partner, or a lower bound of it once a merge made
    # it stale (a merged group is never closer than the nearer of its parts);
    # a stale row is recomputed only when it comes first. A merge then costs
    # O(count) instead of a scan of the whole matrix.
    nearest = allowed.argmin(1)
    best = allowed[np.arange(count), nearest]
    stale = np.zeros(count, bool)
    while True:
        i = int(np.argmin(best))
        if not np.isfinite(best[i]):
            break
        if stale[i]:
            nearest[i] = int(allowed[i].argmin())
            best[i], stale[i] = allowed[i, nearest[i]], False
            continue
        i, j = sorted((i, int(nearest[i])))
        row = (size[i] * mean[i] + size[j] * mean[j]) / (size[i] + size[j])
        links = blocked[i] | blocked[j]
        size[i] += size[j]
        merged[j] = True
        mean[i], mean[:, i] = row, row
        blocked[i], blocked[:, i] = links, links
        limit_row = group + span / np.sqrt(np.minimum(size[i], size))
        allowed_row = np.where(links | merged | (row > limit_row), np.inf, row)
        allowed[i], allowed[:, i] = allowed_row, allowed_row
        allowed[j], allowed[:, j] = np.inf, np.inf
        root[root == j] = i
        stale[(nearest == i) | (nearest == j)] = True
        nearest[i] = int(allowed_row.argmin())
        best[i], best[j] = allowed_row[nearest[i]], np.inf
        stale[i] = stale[j] = False
    return root


@dataclass
class _Claim:
    user: int
    faces: np.ndarray  # indices into the event's faces
    closeness: np.ndarray  # mean distance of each face to the rest of its group
    competitors: list[int]


def _claim(
    user: int,
    faces: np.ndarray,
    photos: np.ndarray,
    qualities: np.ndarray,
    refs: Mapping[int, np.ndarray],
    selfies: np.ndarray,
    owners: np.ndarray,
    thresholds: MatchThresholds,
    rejected: Mapping[int, np.ndarray] | None = None,
    anchors: Mapping[int, int] | None = None,
    neighbourhoods: Neighbourhoods | None = None,
) -> _Claim:
    """Cluster the neighbourhood of `user`'s selfies and return the faces in their group.

    `rejected` gives, per person, the faces (indices) they cannot link with;
    `anchors`, the attendee of each anchor (a person with a negative id).
    `faces` are points whose scales `neighbourhoods` computes as they are read.
    """
    # The whole event's descriptors, contiguous: the search over all of them is the costly read.
    vectors = neighbourhoods.vectors if neighbourhoods is not None else faces[:, :DESCRIPTOR_SIZE]
    near_user = _raw_distances(refs[user], vectors).min(0) <= thresholds.radius
    strong = qualities >= WEAK_QUALITY
    local = np.flatnonzero(near_user & strong)
    weak = np.flatnonzero(near_user & ~strong & (qualities >= UNUSABLE_QUALITY))
    if rejected and user in rejected:
        # A face the attendee rejected never joins them, however weak.
        weak = weak[~np.isin(weak, rejected[user])]
    if local.size == 0 and weak.size == 0:
        return _Claim(user, np.zeros(0, np.int64), np.zeros(0), [])
    if neighbourhoods is not None:
        neighbourhoods.read(np.concatenate([local, weak, (rejected or {}).get(user, np.zeros(0, np.int64))]))
    # Attendees near weak faces compete for them too, so they are decided together.
    near = _raw_distances(selfies, faces[np.concatenate([local, weak])]).min(1) <= thresholds.radius
    competitors = sorted({int(o) for o in owners[near]} - {user})
    people = [user, *competitors]
    attendees = np.array([(anchors or {}).get(p, p) for p in people])
    # The other attendees' columns of `to_people`: one's own anchors are no rival for a piece.
    rivals = attendees != attendees[0]
    n = local.size
    weight = float(len(refs[user]))
    face_distances = _distances(faces[local], faces[local])
    to_people = np.stack([_distances(faces[local], refs[p]).mean(1) for p in people], axis=1).reshape(n, len(people))
    if n:
        distances = np.zeros((n + len(people), n + len(people)))
        distances[:n, :n] = face_distances
        distances[:n, n:] = to_people
        distances[n:, :n] = to_people.T
        group = np.concatenate([photos[local], np.full(len(people), -1)])
        # Faces of one photo are different people; so are different attendees.
        cannot_link = group[:, None] == group[None, :]
        if rejected:
            cannot_link |= _rejection_links(local, people, rejected)
        sizes = np.concatenate([np.ones(n), [len(refs[p]) for p in people]])
        root = average_linkage(distances, cannot_link, sizes, thresholds.single, thresholds.group)
        members = np.flatnonzero(root[:n] == root[n])
        members = _attach_pieces(members, root[:n], root[n:], photos[local], to_people, rivals, thresholds)
        if rejected and user in rejected:
            members = _without_rejected_groups(members, root[:n], local, rejected[user])
    else:
        members = np.zeros(0, np.int64)
    totals = face_distances[np.ix_(members, members)].sum(1) + weight * to_people[members, 0]
    closeness = totals / (members.size - 1 + weight)
    chosen, closeness = local[members], closeness
    if weak.size:
        extra, extra_closeness = _attach_weak(
            weak, faces, photos, faces[chosen], photos[chosen], refs[user], weight, thresholds
        )
        chosen = np.concatenate([chosen, extra])
        closeness = np.concatenate([closeness, extra_closeness])
    attendee = (anchors or {}).get(user, user)
    if attendee != user and chosen.size and len(refs[attendee]):
        # A confirmed face widens the attendee's reference; it does not stand for
        # them alone. A face of its group must be near them on average over that
        # face and their selfies too, or one "that's me" brings a look-alike's
        # photos that sit near the confirmed face and far from the selfie.
        both = (_distances(faces[chosen], refs[user]).min(1) + _distances(faces[chosen], refs[attendee]).min(1)) / 2
        keep = both <= thresholds.single
        chosen, closeness = chosen[keep], closeness[keep]
    if rejected and user in rejected and chosen.size:
        # "Not me" also stands for the faces nearer the rejected one than to the
        # rest of their group on average: the look-alike in other photos (the
        # rule by which a new photo's face joins, match_arrivals).
        keep = _distances(faces[chosen], faces[rejected[user]]).min(1) >= closeness
        chosen, closeness = chosen[keep], closeness[keep]
    if chosen.size == 0:
        return _Claim(user, np.zeros(0, np.int64), np.zeros(0), competitors)
    return _Claim(user, chosen, closeness, competitors)


def _attach_weak(
    weak: np.ndarray,
    faces: np.ndarray,
    photos: np.ndarray,
    group_faces: np.ndarray,
    group_photos: np.ndarray,
    selfie: np.ndarray,
    weight: float,
    thresholds: MatchThresholds,
) -> tuple[np.ndarray, np.ndarray]:
    """The weak faces close enough to the settled group (selfies weighted as in closeness).

    They are judged against the group one by one and never change it; of
    several in one photo, only the closest can be the attendee's. Distances
    are raw, not read against neighbourhoods (see the module docstring).
    """
    totals = weight * _raw_distances(faces[weak], selfie).mean(1)
    if len(group_faces):
        totals = totals + _raw_distances(faces[weak], group_faces).sum(1)
    means = totals / (len(group_faces) + weight)
    taken = set(group_photos.tolist())
    bar = thresholds.single - thresholds.weak_margin
    best: dict[int, tuple[float, int]] = {}
    for index, mean in zip(weak.tolist(), means.tolist(), strict=True):
        photo = int(photos[index])
        if mean <= bar and photo not in taken and (photo not in best or mean < best[photo][0]):
            best[photo] = (mean, index)
    found = sorted(best.values(), key=lambda item: item[1])
    return np.array([i for _, i in found], np.int64), np.array([m for m, _ in found], np.float64)


def _attach_pieces(
    members: np.ndarray,
    roots: np.ndarray,
    person_roots: np.ndarray,
    photos: np.ndarray,
    to_people: np.ndarray,
    rivals: np.ndarray,
    thresholds: MatchThresholds,
) -> np.ndarray:
    """Add the groups without a selfie that are clearly this attendee's (column 0 of `to_people`).

    `person_roots` gives the root of each column's selfie, `rivals` marks the
    columns of other attendees (not this one's anchors).

    A person's faces can form two groups that stay apart (a different year,
    light or angle) while the selfie joined only one. Such a group is taken
    when it is clearly closer to the selfie than to any other attendee's
    selfie (`margin`, the ratio test of descriptor matching) and close to the
    selfie: within `attach`, or within `single` and no further from the selfie
    than the selfie's own group is, give or take `piece_slack`. A selfie taken
    in poor light can be far from all of its owner's faces, leaving both
    groups beyond `attach`; a group as near it as the owner's own is then as
    much evidence. Conversely, a group within `attach` of a selfie whose own
    group is far nearer it (more than `attach_slack`) is a look-alike: the
    attendee's own faces, in whatever light, gather much closer to it.
    `piece_slack` and `attach_slack` were chosen on the tuning composites
    (bench/tune_matching.py --piece-slack --attach-slack).

    A person is in a photo once, so a group with a face in a photo the
    attendee already has a face in is someone else: a look-alike stranger
    near the selfie is often seen beside the attendee. Only a group near the
    selfie by both measures, within `attach` and as near as the attendee's
    own group, outweighs that: the second face of one photo (a reflection, a
    portrait on the wall) starts a group the first cannot join, and the
    attendee's faces that follow it. Such a group joins without its faces in
    the shared photos.

    The margin keeps a group from the attendee when another attendee's selfie
    is nearly as close: the group could be either's. For a group as near the
    selfie as the attendee's own faces, another attendee counts only if the
    group could be theirs by the same rules (within `attach` of their selfie,
    or as near it as their own group): a look-alike attendee whose own faces
    are far nearer his selfie is no contender for it.
    """
    taken = set(photos[members].tolist())
    owned = set(person_roots.tolist())
    # Each person's mean distance to the faces of their own group.
    own_means = np.array(
        [
            to_people[group, column].mean() if (group := np.flatnonzero(roots == root)).size else np.inf
            for column, root in enumerate(person_roots.tolist())
        ]
    )
    candidates = []
    for root in np.unique(roots).tolist():
        if root in owned:
            continue
        piece = np.flatnonzero(roots == root)
        if piece.size < PIECE_MIN_SIZE:
            continue
        means = to_people[piece].mean(0)
        as_near_as_theirs = (means <= thresholds.single) & (means - own_means <= thresholds.piece_slack)
        close = means[0] <= thresholds.attach and means[0] - own_means[0] <= thresholds.attach_slack
        as_near_as_own = bool(as_near_as_theirs[0])
        contenders = rivals & ((means <= thresholds.attach) | as_near_as_theirs) if as_near_as_own else rivals
        others = means[contenders].min() if contenders.any() else np.inf
        if (close or as_near_as_own) and others - means[0] >= thresholds.margin:
            candidates.append((float(means[0]), root, piece, close and as_near_as_own))
    for _, _, piece, near_by_both in sorted(candidates, key=lambda c: (c[0], c[1])):
        shared = np.isin(photos[piece], list(taken))
        if shared.any() and not near_by_both:
            # A person is in a photo once: a group seen beside the attendee is someone else.
            continue
        # A face in a photo the attendee already has a face in is someone else's.
        piece = piece[~shared]
        members = np.concatenate([members, piece])
        taken |= set(photos[piece].tolist())
    return np.sort(members)


def match_event(
    face_ids: np.ndarray,
    face_vectors: np.ndarray,
    face_photo_ids: np.ndarray,
    references: Mapping[int, np.ndarray],
    thresholds: MatchThresholds = MatchThresholds(),
    users: Collection[int] | None = None,
    face_qualities: np.ndarray | None = None,
    constraints: MatchConstraints | None = None,
    neighbourhoods: Neighbourhoods | None = None,
) -> dict[int, dict[int, float]]:
    """For each attendee id (all, or those in `users`), {face id: similarity} of the event faces that are theirs.

    `face_qualities` (0..1 per face, default all 1) decides which faces are
    weak or unusable; see the module docstring. `constraints` are the
    attendees' corrections (see `MatchConstraints`). `neighbourhoods` may be
    kept by the caller from an earlier call on the same faces, given in face
    id order, with the same thresholds: the scales it computed are reused.

    The answer for an attendee is the same whether `users` names them alone or
    everyone: the attendees who could claim the same faces are always decided
    too.
    """
    refs = {u: np.asarray(r, np.float32).reshape(-1, DESCRIPTOR_SIZE) for u, r in references.items()}
    wanted = sorted(refs if users is None else {u for u in users if u in refs})
    result: dict[int, dict[int, float]] = {user: {} for user in wanted}
    present = sorted(u for u in refs if len(refs[u]))
    face_ids = np.asarray(face_ids)
    if face_ids.size == 0 or not present:
        return result
    # Work in face id order, so that the arithmetic, and so the answer, is the same however the faces are given.
    faces = np.ascontiguousarray(face_vectors, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE)
    photos = np.asarray(face_photo_ids)
    qualities = np.ones(len(face_ids)) if face_qualities is None else np.asarray(face_qualities, np.float64)
    if np.any(face_ids[1:] < face_ids[:-1]):
        order = np.argsort(face_ids, kind="stable")
        face_ids, faces, photos, qualities = face_ids[order], faces[order], photos[order], qualities[order]
    if neighbourhoods is None or not neighbourhoods.fits(len(faces), thresholds):
        neighbourhoods = Neighbourhoods(faces, photos, thresholds)
    faces, refs = neighbourhoods.points, neighbourhoods.references(refs)
    anchors: dict[int, int] = {}
    rejected: dict[int, np.ndarray] = {}
    forced: dict[int, tuple[float, int]] = {}
    if constraints:
        held = _held_faces(refs, face_ids, faces, photos, qualities, constraints, thresholds, neighbourhoods)
        # A confirmed face the selfies' group misses becomes a reference, with its own scale.
        neighbourhoods.read(np.flatnonzero(np.isin(face_ids, [f for c in constraints.confirmed.values() for f in c])))
        refs, anchors, rejected, forced = _constrained_references(refs, face_ids, faces, constraints, held)
        present = sorted(u for u in refs if len(refs[u]))
    selfies = np.concatenate([refs[u] for u in present])
    owners = np.concatenate([np.full(len(refs[u]), u) for u in present])

    def claim_of(user: int) -> _Claim:
        return _claim(
            user,
            faces,
            photos,
            qualities,
            refs,
            selfies,
            owners,
            thresholds,
            rejected=rejected,
            anchors=anchors,
            neighbourhoods=neighbourhoods,
        )

    pending = [u for u in wanted if len(refs[u])] + sorted(a for a, u in anchors.items() if u in wanted)
    claims = {user: claim_of(user) for user in pending}
    # Whoever could claim the same faces must be decided as well.
    for user in sorted({c for claim in list(claims.values()) for c in claim.competitors} - set(claims)):
        claims[user] = claim_of(user)

    best: dict[int, tuple[float, int]] = {}
    for claim in claims.values():
        for face, closeness in zip(claim.faces.tolist(), claim.closeness.tolist(), strict=True):
            if face not in best or (closeness, claim.user) < best[face]:
                best[face] = (closeness, claim.user)
    if forced:
        _give_confirmed_faces(claims, best, forced)
    for user in wanted:
        for mine in (claims[c] for c in sorted(claims) if anchors.get(c, c) == user):
            for face, closeness in zip(mine.faces.tolist(), mine.closeness.tolist(), strict=True):
                if anchors.get(best[face][1], best[face][1]) == user:
                    similarity = float(distance_to_similarity(closeness))
                    key = int(face_ids[face])
                    result[user][key] = max(similarity, result[user].get(key, 0.0))
    return result


# A face's neighbourhood is compared with the median over at most this many of the event's faces.
NEIGHBOURHOOD_SAMPLE = 512
# Distances are read against neighbourhoods only in an event of at least this
# many cohorts of faces: in a smaller one, a cohort is most of the event, not
# a neighbourhood (shared/faces, 73 faces, lost a guest's photo to it).
NEIGHBOURHOOD_EVENT_COHORTS = 5


def _sample_step(count: int) -> int:
    """Every how many faces (in id order) one is in the sample for the event's median.

    A power of two, so that as the event grows the sample keeps the faces it
    had or half of them: their nearest faces are already measured.
    """
    step = 1
    while count > step * NEIGHBOURHOOD_SAMPLE:
        step *= 2
    return step


class Neighbourhoods:
    """The event's faces as points (`_points`), with scales computed when a claim first reads them.

    Why: in descriptor space some faces sit where many people look alike, and
    there a stranger is as near as the same person's photo elsewhere. Reading
    each distance against how crowded both ends' neighbourhoods are (the
    contextual dissimilarity of image retrieval) takes that away: a face's
    scale is its `crowding` over the event's median, and a
    distance is divided by the square root of both ends' scales. Faces of a
    crowded region must be nearer to count as one person, faces of a sparse
    one may be further, and a face of the event's usual crowding reads as it
    is. Selfies keep scale 1 (scaling them too let more look-alikes in on the
    tuning events). An event with too few faces for neighbourhoods
    (`NEIGHBOURHOOD_EVENT_COHORTS`) reads raw distances.

    A claim reads the faces near its attendee; each one's scale costs its
    distances to every face of the event, so computing only those keeps a
    search for one attendee to that attendee's part of the event, and a
    caller that keeps the object for the same faces (the local backend, per
    event) computes each face's scale once. When photos arrive, the kept
    object is given as `earlier` to the grown event's: a face's nearest
    faces are brought up to date with the new faces alone, and the median's
    sample keeps the faces it had.
    """

    def __init__(
        self,
        faces: np.ndarray,
        photos: np.ndarray,
        thresholds: MatchThresholds,
        earlier: Neighbourhoods | None = None,
    ) -> None:
        """Neighbourhoods of `faces` (in id order, of `photos`), read with `thresholds`.

        `earlier` may hold the same event's neighbourhoods before faces were
        added: the faces it held are the first of `faces`, in the same order.
        The nearest faces it measured are then brought up to date with the
        new faces only, so that an event growing photo by photo does not pay
        its scales again at each search.
        """
        self.lock = threading.Lock()
        self.vectors = np.ascontiguousarray(faces, dtype=np.float32)
        self.points = _points(faces, np.ones(len(faces)))
        self.photos = np.asarray(photos)
        self.thresholds = thresholds
        # Each face's nearest faces beyond the floor (`nearest_beyond_floor`), where `measured`.
        self.nearest = np.full((len(faces), max(int(thresholds.cohort), 0)), np.inf, np.float32)
        self.measured = np.zeros(len(faces), bool)
        self.known = np.ones(len(faces), bool)  # faces whose scale is in `points`
        self.median = np.nan
        if thresholds.cohort <= 0 or len(faces) < NEIGHBOURHOOD_EVENT_COHORTS * thresholds.cohort:
            return
        if earlier is not None and earlier.fits(len(earlier.points), thresholds) and len(earlier.points) <= len(faces):
            self._carry(earlier)
        sample = np.arange(0, len(faces), _sample_step(len(faces)))
        self._measure(sample)
        sample_crowding = crowding(self.nearest[sample])
        if np.isfinite(sample_crowding).any():
            self.median = float(np.nanmedian(sample_crowding))
        if np.isfinite(self.median) and self.median > 0:
            self.known[:] = False
            measured = np.flatnonzero(self.measured)
            self.points[measured, DESCRIPTOR_SIZE] = self._scales(crowding(self.nearest[measured]))
            self.known[measured] = True

    def _carry(self, earlier: Neighbourhoods) -> None:
        """Take the faces `earlier` measured, and bring their nearest up to date with the faces added since."""
        held = len(earlier.points)
        with earlier.lock:
            rows = np.flatnonzero(earlier.measured)
            nearest = earlier.nearest[rows]
        added = nearest_beyond_floor(
            self.vectors[rows], self.vectors[held:], self.thresholds, self.photos[rows], self.photos[held:]
        )
        merged = np.sort(np.concatenate([nearest, added], axis=1), axis=1)[:, : self.nearest.shape[1]]
        self.nearest[rows] = merged
        self.measured[rows] = True

    def _measure(self, indices: np.ndarray) -> None:
        """Measure the nearest faces of the faces at `indices` not measured yet."""
        missing = np.unique(indices[~self.measured[indices]])
        if missing.size:
            vectors, photos = self.vectors, self.photos
            self.nearest[missing] = nearest_beyond_floor(
                vectors[missing], vectors, self.thresholds, photos[missing], photos
            )
            self.measured[missing] = True

    def _scales(self, distances: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(distances), distances / self.median, 1.0)

    def fits(self, count: int, thresholds: MatchThresholds) -> bool:
        """Whether this holds `count` faces read with the same neighbourhood settings as `thresholds`."""
        same = (self.thresholds.cohort, self.thresholds.cohort_floor) == (thresholds.cohort, thresholds.cohort_floor)
        return same and len(self.points) == count

    def read(self, indices: np.ndarray) -> None:
        """Compute the scales of the faces at `indices` that are not known yet."""
        indices = np.asarray(indices, np.int64)
        with self.lock:
            missing = np.unique(indices[~self.known[indices]])
            if missing.size:
                self._measure(missing)
                self.points[missing, DESCRIPTOR_SIZE] = self._scales(crowding(self.nearest[missing]))
                self.known[missing] = True

    def references(self, refs: Mapping[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Selfies as points of scale 1: the guest's reference is read as it is, the faces against their crowding."""
        return {user: _points(ref, np.ones(len(ref))) for user, ref in refs.items()}


# --- Constraints from attendees' corrections --------------------------------


def _constrained_references(
    refs: Mapping[int, np.ndarray],
    face_ids: np.ndarray,
    faces: np.ndarray,
    constraints: MatchConstraints,
    held: Mapping[int, Collection[int]],
) -> tuple[dict[int, np.ndarray], dict[int, int], dict[int, np.ndarray], dict[int, tuple[float, int]]]:
    """The references with an anchor per confirmed face the selfies miss, and the faces each claimant cannot link with.

    Returns the references (anchors under negative ids), {anchor id: attendee},
    {claimant id: indices of the faces its attendee rejected} and {index of a
    confirmed face: (-inf, its anchor id or attendee id)}, the arbitration
    entry that gives it to the attendee whoever else is close to it. Faces not
    in `face_ids` and attendees without a reference are left out.

    A confirmed face that the group of the attendee's selfies holds already
    (`held`, by index) is given to the attendee and anchors nothing: a group of
    its own would gather the nearest stranger's faces rather than the
    attendee's, which the selfies' group holds. A face it misses (the guest in
    a costume, or in a group of photos too far from the selfie) anchors a group,
    which brings that face's look-alikes along (those near the attendee, `_claim`).
    """

    def index_of(face_id: int) -> int | None:
        position = int(np.searchsorted(face_ids, face_id))
        return position if position < len(face_ids) and face_ids[position] == face_id else None

    extended = dict(refs)
    anchors: dict[int, int] = {}
    forced: dict[int, tuple[float, int]] = {}
    for user in sorted(constraints.confirmed):
        if user not in refs:
            continue
        for face_id in sorted(constraints.confirmed[user]):
            index = index_of(face_id)
            if index is None or index in forced:
                continue
            if index in held.get(user, ()):
                forced[index] = (-np.inf, user)
                continue
            anchor = -1 - len(anchors)
            extended[anchor] = faces[index : index + 1]
            anchors[anchor] = user
            forced[index] = (-np.inf, anchor)
    by_user = _rejected_indices(face_ids, constraints)
    rejected = {c: by_user[anchors.get(c, c)] for c in extended if anchors.get(c, c) in by_user}
    return extended, anchors, rejected, forced


def _rejected_indices(face_ids: np.ndarray, constraints: MatchConstraints) -> dict[int, np.ndarray]:
    """{attendee: sorted indices into `face_ids` (sorted) of the faces they rejected}; absent faces are left out."""
    by_user = {}
    for user, face_list in constraints.rejected.items():
        wanted = np.asarray(sorted(face_list), face_ids.dtype)
        positions = np.searchsorted(face_ids, wanted)
        inside = positions < len(face_ids)
        positions, wanted = positions[inside], wanted[inside]
        found = positions[face_ids[positions] == wanted]
        if found.size:
            by_user[user] = found.astype(np.int64)
    return by_user


def _held_faces(
    refs: Mapping[int, np.ndarray],
    face_ids: np.ndarray,
    faces: np.ndarray,
    photos: np.ndarray,
    qualities: np.ndarray,
    constraints: MatchConstraints,
    thresholds: MatchThresholds,
    neighbourhoods: Neighbourhoods | None = None,
) -> dict[int, set[int]]:
    """{attendee: indices of the faces their selfies' group holds} for the attendees who confirmed faces.

    The group is their claim with their rejections and without any anchor.
    """
    present = sorted(u for u in refs if len(refs[u]))
    confirming = sorted(u for u in constraints.confirmed if constraints.confirmed[u] and u in present)
    if not confirming:
        return {}
    selfies = np.concatenate([refs[u] for u in present])
    owners = np.concatenate([np.full(len(refs[u]), u) for u in present])
    rejected = _rejected_indices(face_ids, constraints)
    held = {}
    for user in confirming:
        # Without anchors (None): the group of the selfies alone.
        claim = _claim(
            user, faces, photos, qualities, refs, selfies, owners, thresholds, rejected, None, neighbourhoods
        )
        held[user] = set(claim.faces.tolist())
    return held


def _rejection_links(local: np.ndarray, people: list[int], rejected: Mapping[int, np.ndarray]) -> np.ndarray:
    """Cannot-links between each person's node and the local faces (indices `local`) their attendee rejected."""
    n = local.size
    links = np.zeros((n + len(people), n + len(people)), bool)
    for column, person in enumerate(people):
        if person in rejected:
            refused = np.isin(local, rejected[person])
            links[:n, n + column] = refused
            links[n + column, :n] = refused
    return links


def _without_rejected_groups(
    members: np.ndarray, roots: np.ndarray, local: np.ndarray, refused: np.ndarray
) -> np.ndarray:
    """`members` less every group that holds a rejected face: its look-alikes are not the attendee either."""
    refused_roots = roots[np.isin(local, refused)]
    return members[~np.isin(roots[members], refused_roots)]


def _give_confirmed_faces(
    claims: dict[int, _Claim], best: dict[int, tuple[float, int]], forced: Mapping[int, tuple[float, int]]
) -> None:
    """A confirmed face goes to its claimant (anchor or attendee) whatever the distances say (a must-link).

    Nobody else gets it, even when the claimant's own claim was not computed.
    """
    for face, entry in forced.items():
        best[face] = entry
        claim = claims.get(entry[1])
        if claim is not None and face not in set(claim.faces.tolist()):
            claim.faces = np.append(claim.faces, face)
            claim.closeness = np.append(claim.closeness, 0.0)


def _closer_to_rejected(
    faces: np.ndarray, users: list[int], means: np.ndarray, rejected: Mapping[int, np.ndarray]
) -> np.ndarray:
    """Which (face, attendee) pairs to refuse: the face is nearer a face the attendee rejected than their group."""
    refuse = np.zeros(means.shape, bool)
    for column, user in enumerate(users):
        vectors = np.asarray(rejected.get(user, ()), np.float32).reshape(-1, DESCRIPTOR_SIZE)
        if len(vectors):
            refuse[:, column] = _distances(faces, vectors).min(1) < means[:, column]
    return refuse


def match_arrivals(
    face_ids: np.ndarray,
    face_vectors: np.ndarray,
    groups: Mapping[int, np.ndarray],
    thresholds: MatchThresholds = MatchThresholds(),
    face_qualities: np.ndarray | None = None,
    rejected: Mapping[int, np.ndarray] | None = None,
) -> dict[int, dict[int, float]]:
    """The immediate answer for the faces of one new photo: {attendee id: {face id: similarity}}.

    A weak face needs a mean `weak_margin` below `live`; an unusable one never joins.
    `rejected` holds, per attendee, the descriptors of faces they said are not
    them: a new face nearer one of those than to the attendee's group is not theirs.

    `groups` are each attendee's selfies plus the faces matched to them so
    far. A face joins the attendee whose group it is closest to on average,
    when that mean is within `live`, and an attendee takes at most one face
    of the photo. `live` is stricter than `single`, the event-wide bar for a
    lone face joining a group: there the face joins only if no stranger's
    faces are nearer, here nothing competes for it, and the guest sees the
    answer until the event-wide pass. This costs O(group size) per face
    however large the event is; the event-wide pass (`match_event`) settles
    the answer soon after.
    """
    faces = np.asarray(face_vectors, np.float32).reshape(-1, DESCRIPTOR_SIZE)
    users = sorted(u for u, g in groups.items() if len(g))
    result: dict[int, dict[int, float]] = {u: {} for u in groups}
    if not len(faces) or not users:
        return result
    means = np.stack(
        [_distances(faces, np.asarray(groups[u], np.float32).reshape(-1, DESCRIPTOR_SIZE)).mean(1) for u in users],
        axis=1,
    )
    qualities = np.ones(len(faces)) if face_qualities is None else np.asarray(face_qualities, np.float64)
    bars = np.where(qualities >= WEAK_QUALITY, thresholds.live, thresholds.live - thresholds.weak_margin)
    bars[qualities < UNUSABLE_QUALITY] = -1.0
    means[means > bars[:, None]] = np.inf
    if rejected:
        means[_closer_to_rejected(faces, users, means, rejected)] = np.inf
    closest = means.argmin(1)
    for column, user in enumerate(users):
        mine = np.flatnonzero((closest == column) & np.isfinite(means[:, column]))
        if mine.size:
            face = mine[np.argmin(means[mine, column])]
            result[user][int(face_ids[face])] = float(distance_to_similarity(means[face, column]))
    return result


def match_threshold(
    face_ids: np.ndarray, face_vectors: np.ndarray, references: Mapping[int, np.ndarray], threshold: float
) -> dict[int, dict[int, float]]:
    """The bare model: every face within `threshold` of one of the attendee's selfies."""
    faces = np.asarray(face_vectors, np.float32).reshape(-1, DESCRIPTOR_SIZE)
    result: dict[int, dict[int, float]] = {}
    for user, ref in references.items():
        if not len(faces) or not len(ref):
            result[user] = {}
            continue
        distances = np.sqrt(_squared_distances(faces, np.asarray(ref, np.float32).reshape(-1, DESCRIPTOR_SIZE)).min(1))
        hits = np.flatnonzero(distances <= threshold)
        result[user] = {int(face_ids[i]): float(distance_to_similarity(distances[i])) for i in hits}
    return result


def unclaimed_groups(vectors: np.ndarray, photos: np.ndarray, threshold: float, chunk: int = 1024) -> tuple[int, int]:
    """Faces that have a look-alike in another photo within `threshold`, and how many people they make.

    People are the connected groups of such pairs: an estimate (single links
    can join two look-alikes) that costs O(n) memory per chunk of rows.
    """
    count = len(vectors)
    parent = np.arange(count)

    def find(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = int(parent[item])
        return item

    faces = np.asarray(vectors, np.float32).reshape(-1, DESCRIPTOR_SIZE)
    squared = threshold * threshold
    for start in range(0, count, chunk):
        block = _squared_distances(faces[start : start + chunk], faces)
        rows, columns = np.nonzero(block <= squared)
        for row, column in zip((rows + start).tolist(), columns.tolist(), strict=True):
            if row < column and photos[row] != photos[column]:
                a, b = find(row), find(column)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([find(i) for i in range(count)], np.int64)
    sizes = np.bincount(roots, minlength=count) if count else np.zeros(0, np.int64)
    return int(sizes[sizes >= 2].sum()), int((sizes >= 2).sum())
