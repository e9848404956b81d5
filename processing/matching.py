"""Event-wide face matching for descriptor backends: who is in which photo.

`match_event` is a pure function of all the event's faces and all attendee
references. It does not depend on the order photos arrived in and breaks ties
on face id, so recomputing it after new photos or selfies gives the same answer
as a batch run, and re-running it is idempotent.

For each attendee u, with D[f, u] the distance from face f to u's nearest selfie:

1. anchors of u are u's selfies plus the event faces with D <= anchor_threshold;
2. faces with D <= candidate_threshold are candidates; a candidate is accepted
   when D <= direct_threshold, or when the median distance from the face to u's
   anchors (anchors in the same photo ignored) is <= group_threshold. Faces of
   the same person from the same event agree with each other more than with a
   look-alike, so the median rescues true faces a single selfie misses and
   rejects look-alikes it would accept;
3. a face goes only to the accepted attendee it is closest to, and within one
   photo an attendee keeps at most one face (greedy by distance).

This is a single pass, with no chaining from anchors to further anchors, so it
cannot drift from a person to a look-alike. Thresholds were tuned on composites
of shared/faces-lfw portraits with a held-out set of identities; see the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DESCRIPTOR_SIZE = 128


@dataclass(frozen=True)
class MatchThresholds:
    group: float = 0.55
    candidate: float = 0.60
    anchor: float = 0.50
    direct: float = 0.45


def distance_to_similarity(distance: float | np.ndarray) -> np.ndarray:
    """Map a descriptor distance to a 0..1 score where higher means more alike."""
    return np.clip(1.0 - np.asarray(distance, dtype=np.float32) / 1.2, 0.0, 1.0)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(squared, 0.0)


def match_event(
    face_ids: np.ndarray,
    face_vectors: np.ndarray,
    face_photo_ids: np.ndarray,
    references: Mapping[int, np.ndarray],
    thresholds: MatchThresholds = MatchThresholds(),
) -> dict[int, dict[int, float]]:
    """For each attendee id, {face id: similarity} of the event faces that are theirs."""
    result: dict[int, dict[int, float]] = {user: {} for user in references}
    refs = {u: np.asarray(r, np.float32).reshape(-1, DESCRIPTOR_SIZE) for u, r in references.items()}
    users = sorted(u for u in refs if len(refs[u]))
    face_ids = np.asarray(face_ids)
    count = len(face_ids)
    if count == 0 or not users:
        return result
    faces = np.ascontiguousarray(face_vectors, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE)
    squared = _squared_distances(faces, np.concatenate([refs[u] for u in users]))
    bounds = np.concatenate([[0], np.cumsum([len(refs[u]) for u in users])])
    nearest = np.empty((count, len(users)), np.float32)
    for j in range(len(users)):
        nearest[:, j] = squared[:, bounds[j] : bounds[j + 1]].min(1)
    nearest = np.sqrt(nearest)
    photo = np.unique(np.asarray(face_photo_ids), return_inverse=True)[1].ravel()

    accepted = np.full(nearest.shape, np.inf, np.float32)
    for j, user in enumerate(users):
        candidates = np.flatnonzero(nearest[:, j] <= thresholds.candidate)
        if candidates.size == 0:
            continue
        anchors = np.flatnonzero(nearest[:, j] <= thresholds.anchor)
        group = np.concatenate([refs[user], faces[anchors]])
        group_photo = np.concatenate([np.full(len(refs[user]), -1), photo[anchors]])
        to_group = np.sqrt(_squared_distances(faces[candidates], group))
        to_group[photo[candidates][:, None] == group_photo[None, :]] = np.inf
        to_group.sort(axis=1)
        finite = np.isfinite(to_group).sum(1)  # the selfies always count, so >= 1
        rows = np.arange(len(candidates))
        median = 0.5 * (to_group[rows, (finite - 1) // 2] + to_group[rows, finite // 2])
        ok = (nearest[candidates, j] <= thresholds.direct) | (median <= thresholds.group)
        accepted[candidates[ok], j] = nearest[candidates[ok], j]

    closest = np.argmin(accepted, axis=1)
    exclusive = np.zeros(accepted.shape, bool)
    exclusive[np.arange(count), closest] = True
    accepted[~exclusive] = np.inf
    face_index, user_index = np.nonzero(np.isfinite(accepted))
    if face_index.size:
        order = np.lexsort((face_ids[face_index], accepted[face_index, user_index]))
        taken: set[tuple[int, int]] = set()
        selected = []
        for k in order.tolist():
            key = (int(photo[face_index[k]]), int(user_index[k]))
            if key not in taken:
                taken.add(key)
                selected.append(k)
        face_index, user_index = face_index[selected], user_index[selected]
    similarities = distance_to_similarity(accepted[face_index, user_index])
    for f, u, s in zip(face_index.tolist(), user_index.tolist(), similarities.tolist(), strict=True):
        result[users[u]][int(face_ids[f])] = float(s)
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
