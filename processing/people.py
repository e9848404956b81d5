"""The people of an event: its faces in groups, one per person, and the photographer's edits to them.

The grouping is stored (`FaceGroup`, `Face.group`) by the event's refresh task
(`regroup_event`), never computed in a request, so the studio lists it with
one indexed, paginated query however many faces the event has.

How faces are grouped: in face id order, each face joins the group whose
mean descriptor is nearest, when that is within FACE_MATCH_THRESHOLD and the
group has no other face of the same photo; otherwise it starts a group. Only
descriptor backends give faces a descriptor; without one a face is in no group.

The photographer's edits are constraints every regrouping keeps:

- merging two groups, and hiding a group, lock the group's faces in it;
- moving a face out of a group puts it, locked, in a closed group of its
  own, which takes no other face (merge it with the right person's group).

Locked faces never move. Each group holding locked faces is a seed of the next
regrouping: new faces of the same person join it, so a merged or hidden group
keeps growing. Groups without locked faces keep their ids from one grouping to
the next by the faces they share.

Re-processing a photo replaces its Face rows, and the edits live on them
(`Face.group`, `group_locked`): each new face takes over the group and the lock
of the old face of the same photo whose box it overlaps most
(`carry_over_groups`, in the pipeline's writing transaction), so an edit holds
through re-processing too.

A hidden group is never matched to a guest, on every path: its faces, and new
faces near its mean that no regrouping has placed yet, take no part in the
local backend's matching (`hidden_face_mask`: the event-wide pass, a selfie
change, a new photo), and `processing.pipeline` leaves its faces out of every
match it writes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from PIL import Image

from gallery.models import EMBEDDING_DTYPE, Event, Face, FaceGroup, Match
from processing.images import open_upright
from processing.matching import DESCRIPTOR_SIZE

# A new face takes over an old face's group when their boxes overlap at least this much (intersection over union).
MIN_CARRY_OVERLAP = 0.3
CROP_SIDE = 160
# The crop shows a margin around the face box, as a fraction of the box.
CROP_MARGIN = 0.3
CROP_SOURCE_SIDE = 1024
UPDATE_BATCH = 1000


class PeopleEditError(ValueError):
    """An edit that does not apply (a face not in the group, a group merged with itself); the message says why."""


def cluster_faces(
    vectors: np.ndarray,
    photo_ids: np.ndarray,
    seeds: np.ndarray,
    threshold: float,
    closed: Iterable[int] = (),
) -> np.ndarray:
    """Group faces; returns each face's label (0, 1, ...).

    `seeds` gives the locked faces their label (labels 0..k-1) and -1 to the
    others, which are taken in the order given: each joins the nearest group
    mean within `threshold` that has no face of its photo and is not one of
    the `closed` seed labels, or starts a group.
    """
    vectors = np.asarray(vectors, np.float64).reshape(-1, DESCRIPTOR_SIZE)
    labels = np.array(seeds, np.int64)
    count = int(labels.max()) + 1 if labels.size else 0
    capacity = max(16, count * 2)
    sums = np.zeros((capacity, DESCRIPTOR_SIZE))
    sizes = np.zeros(capacity)
    photos: list[set[int]] = [set() for _ in range(count)]
    shut = set(closed)
    for index in np.flatnonzero(labels >= 0).tolist():
        label = int(labels[index])
        sums[label] += vectors[index]
        sizes[label] += 1
        photos[label].add(int(photo_ids[index]))
    means = np.zeros((capacity, DESCRIPTOR_SIZE))
    means[:count] = sums[:count] / np.maximum(sizes[:count], 1)[:, None]
    norms = (means**2).sum(1)
    limit = threshold * threshold
    for index in np.flatnonzero(labels < 0).tolist():
        vector, photo = vectors[index], int(photo_ids[index])
        label = -1
        if count:
            # Squared distances from the kept squared norms: one matrix-vector product per face.
            squared = norms[:count] - 2.0 * (means[:count] @ vector) + vector @ vector
            near = np.flatnonzero(squared <= limit)
            for candidate in near[np.argsort(squared[near], kind="stable")].tolist():
                if photo not in photos[candidate] and candidate not in shut:
                    label = candidate
                    break
        if label < 0:
            if count == capacity:
                capacity *= 2
                sums = np.resize(sums, (capacity, DESCRIPTOR_SIZE))
                means = np.resize(means, (capacity, DESCRIPTOR_SIZE))
                sizes = np.resize(sizes, capacity)
                norms = np.resize(norms, capacity)
                sums[count:], means[count:], sizes[count:], norms[count:] = 0, 0, 0, 0
            label, count = count, count + 1
            photos.append(set())
        labels[index] = label
        sums[label] += vector
        sizes[label] += 1
        means[label] = sums[label] / sizes[label]
        norms[label] = means[label] @ means[label]
        photos[label].add(photo)
    return labels


def regroup_event(event: Event) -> int:
    """Recompute and store the event's face groups, keeping the photographer's edits; returns the number of groups.

    Reads outside the transaction; a short transaction writes what changed,
    leaving out faces deleted meanwhile (new faces wait for the next pass).
    """
    rows = list(
        Face.objects.filter(event=event, embedding__isnull=False)
        .order_by("id")
        .values_list("id", "photo_id", "embedding", "group_id", "group_locked", "width", "height")
    )
    if not rows:
        return 0
    face_ids = np.array([r[0] for r in rows], np.int64)
    photo_ids = np.array([r[1] for r in rows], np.int64)
    vectors = np.stack([np.frombuffer(bytes(r[2] or b""), dtype=EMBEDDING_DTYPE) for r in rows])
    seed_groups = sorted({r[3] for r in rows if r[4] and r[3] is not None})
    seed_label = {group_id: label for label, group_id in enumerate(seed_groups)}
    seeds = np.array([seed_label[r[3]] if r[4] and r[3] is not None else -1 for r in rows], np.int64)
    closed = FaceGroup.objects.filter(pk__in=seed_groups, closed=True).values_list("pk", flat=True)
    closed_labels = [seed_label[group_id] for group_id in closed]
    labels = cluster_faces(vectors, photo_ids, seeds, settings.FACE_MATCH_THRESHOLD, closed_labels)
    label_group = {label: group_id for group_id, label in seed_label.items()}
    label_group.update(_keep_ids(labels, [r[3] for r in rows], seeds, set(seed_groups)))
    areas = {r[0]: r[5] * r[6] for r in rows}
    with transaction.atomic():
        present = set(Face.objects.filter(pk__in=face_ids.tolist()).values_list("pk", flat=True))
        new_labels = sorted({int(label) for label in labels.tolist()} - set(label_group))
        created = FaceGroup.objects.bulk_create(FaceGroup(event=event) for _ in new_labels)
        label_group.update({label: group.pk for label, group in zip(new_labels, created, strict=True)})
        changed = [
            Face(pk=face_id, group_id=label_group[int(label)])
            for face_id, label, row in zip(face_ids.tolist(), labels.tolist(), rows, strict=True)
            if face_id in present and row[3] != label_group[int(label)]
        ]
        Face.objects.bulk_update(changed, ["group"], batch_size=UPDATE_BATCH)
        members: dict[int, list[int]] = defaultdict(list)
        for face_id, label in zip(face_ids.tolist(), labels.tolist(), strict=True):
            if face_id in present:
                members[label_group[int(label)]].append(face_id)
        FaceGroup.objects.filter(event=event).exclude(pk__in=list(members)).delete()
        _store_counts(members, dict(zip(face_ids.tolist(), photo_ids.tolist(), strict=True)), areas)
    return len(members)


def _overlap(a: Face, b: Face) -> float:
    """Intersection over union of two faces' boxes (fractions of the same upright image)."""
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


def carry_over_groups(replaced: Sequence[Face], faces: Sequence[Face]) -> int:
    """Give each new face of a re-processed photo the group and lock of the old face its box overlaps most.

    Call inside the transaction that replaced the faces; `replaced` are the old
    rows as read before their deletion. Returns how many faces took a group.
    """
    grouped = [old for old in replaced if old.group_id is not None]
    carried = []
    for face in faces:
        scored = [(_overlap(face, old), -old.pk, old) for old in grouped]
        if not scored:
            break
        overlap, _, best = max(scored, key=lambda item: item[:2])
        if overlap >= MIN_CARRY_OVERLAP:
            face.group_id, face.group_locked = best.group_id, best.group_locked
            carried.append(face)
    # The old faces' groups may be gone already (a regrouping meanwhile): keep only those still there.
    live = set(FaceGroup.objects.filter(pk__in={f.group_id for f in carried}).values_list("pk", flat=True))
    carried = [f for f in carried if f.group_id in live]
    Face.objects.bulk_update(carried, ["group", "group_locked"], batch_size=UPDATE_BATCH)
    return len(carried)


def hidden_face_mask(event: Event, face_ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Which of these faces must never be matched to a guest: in a hidden group, or not grouped yet and near one.

    A face is near a hidden group when its distance to the group's mean is
    within FACE_MATCH_THRESHOLD, the rule by which the next regrouping would
    put it there. Faces without a row yet (a photo being processed) are given
    the id -1. One query when the event hides no one.
    """
    face_ids = np.asarray(face_ids, np.int64)
    mask = np.zeros(len(face_ids), bool)
    hidden_rows = list(
        Face.objects.filter(event=event, group__hidden=True, embedding__isnull=False).values_list(
            "id", "group_id", "embedding"
        )
    )
    if not hidden_rows or not len(face_ids):
        return mask
    mask |= np.isin(face_ids, [row[0] for row in hidden_rows])
    ungrouped = face_ids < 0
    ungrouped |= np.isin(
        face_ids, list(Face.objects.filter(event=event, group__isnull=True).values_list("id", flat=True))
    )
    if ungrouped.any():
        sums: dict[int, np.ndarray] = {}
        sizes: dict[int, int] = defaultdict(int)
        for _, group_id, embedding in hidden_rows:
            vector = np.frombuffer(bytes(embedding or b""), EMBEDDING_DTYPE).astype(np.float64)
            sums[group_id] = sums.get(group_id, 0) + vector
            sizes[group_id] += 1
        means = np.stack([sums[g] / sizes[g] for g in sorted(sums)])
        faces = np.asarray(vectors, np.float64).reshape(-1, DESCRIPTOR_SIZE)[ungrouped]
        squared = (faces**2).sum(1)[:, None] + (means**2).sum(1)[None, :] - 2.0 * faces @ means.T
        mask[np.flatnonzero(ungrouped)] = squared.min(1) <= settings.FACE_MATCH_THRESHOLD**2
    return mask


def _keep_ids(
    labels: np.ndarray, previous: Sequence[int | None], seeds: np.ndarray, seed_groups: set[int]
) -> dict[int, int]:
    """Give each new group without locked faces the id of the old group it shares most faces with."""
    overlap: dict[tuple[int, int], int] = defaultdict(int)
    for label, group_id, seed in zip(labels.tolist(), previous, seeds.tolist(), strict=True):
        if seed < 0 and group_id is not None and group_id not in seed_groups and label >= len(seed_groups):
            overlap[(label, group_id)] += 1
    kept: dict[int, int] = {}
    used: set[int] = set()
    for (label, group_id), _shared in sorted(overlap.items(), key=lambda item: (-item[1], item[0])):
        if label not in kept and group_id not in used:
            kept[label] = group_id
            used.add(group_id)
    return kept


def _store_counts(members: dict[int, list[int]], photo_of: dict[int, int], areas: dict[int, float]) -> None:
    groups = [
        FaceGroup(
            pk=group_id,
            face_count=len(faces),
            photo_count=len({photo_of[f] for f in faces}),
            cover_face_id=max(faces, key=lambda f: (areas.get(f, 0.0), -f)),
        )
        for group_id, faces in members.items()
    ]
    FaceGroup.objects.bulk_update(groups, ["face_count", "photo_count", "cover_face"], batch_size=UPDATE_BATCH)


def _recount(group_ids: Iterable[int]) -> None:
    """Bring the counts and cover of edited groups up to date (inside the edit's transaction)."""
    members: dict[int, list[int]] = defaultdict(list)
    photo_of: dict[int, int] = {}
    areas: dict[int, float] = {}
    for face_id, group_id, photo_id, width, height in Face.objects.filter(group_id__in=list(group_ids)).values_list(
        "id", "group_id", "photo_id", "width", "height"
    ):
        members[group_id].append(face_id)
        photo_of[face_id], areas[face_id] = photo_id, width * height
    _store_counts(members, photo_of, areas)


def merge_groups(event: Event, into: FaceGroup, other: FaceGroup) -> FaceGroup:
    """Put `other`'s faces in `into` for good; the merged group is hidden if either was."""
    if into.pk == other.pk:
        raise PeopleEditError("same group")
    with transaction.atomic():
        Face.objects.filter(group_id__in=[into.pk, other.pk]).update(group_id=into.pk, group_locked=True)
        hidden = into.hidden or other.hidden
        FaceGroup.objects.filter(pk=into.pk).update(hidden=hidden, closed=False)
        other.delete()
        _recount([into.pk])
        if hidden:
            _unmatch(event, into)
    into.refresh_from_db()
    return into


def split_face(event: Event, group: FaceGroup, face: Face) -> FaceGroup:
    """Move `face` out of `group` into a group of its own, for good; returns the new group."""
    if face.group_id != group.pk:
        raise PeopleEditError("face not in group")
    with transaction.atomic():
        alone = FaceGroup.objects.create(event=event, closed=True)
        Face.objects.filter(pk=face.pk).update(group_id=alone.pk, group_locked=True)
        _recount([group.pk, alone.pk])
        if not FaceGroup.objects.filter(pk=group.pk, face_count__gt=0).exists():
            group.delete()
    alone.refresh_from_db()
    return alone


def hide_group(event: Event, group: FaceGroup, hidden: bool) -> None:
    """Hide a group (its faces are never matched to a guest) or show it again; either way for good."""
    with transaction.atomic():
        FaceGroup.objects.filter(pk=group.pk).update(hidden=hidden)
        Face.objects.filter(group_id=group.pk).update(group_locked=True)
        if hidden:
            _unmatch(event, group)
    group.hidden = hidden


def _unmatch(event: Event, group: FaceGroup) -> None:
    deleted, _ = Match.objects.filter(face__group_id=group.pk).delete()
    if deleted:
        event.bump_version()


def face_crop_jpeg(face: Face) -> bytes:
    """A square JPEG of the face with some margin, cut from the clean original (never the watermarked copy)."""
    with face.photo.original.open("rb") as original:
        image = open_upright(original, CROP_SOURCE_SIDE)
    width, height = image.size
    side = max(face.width * width, face.height * height) * (1 + 2 * CROP_MARGIN)
    centre_x = (face.left + face.width / 2) * width
    centre_y = (face.top + face.height / 2) * height
    box = (
        max(0, round(centre_x - side / 2)),
        max(0, round(centre_y - side / 2)),
        min(width, round(centre_x + side / 2)),
        min(height, round(centre_y + side / 2)),
    )
    crop = image.crop(box)
    crop.thumbnail((CROP_SIDE, CROP_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    crop.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
