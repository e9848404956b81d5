"""The embedded face backend: dlib's HOG detector, 5-point landmarks and ResNet descriptor.

Only the public-domain 5-point landmark model and the ResNet descriptor are
used. Models load once per process, on first use, never at import time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Max
from django.utils.translation import gettext
from PIL import Image

from gallery.models import EMBEDDING_DTYPE, Face, Match
from processing.corrections import event_constraints, rejected_vectors
from processing.detection import Box, face_quality, find_boxes, selfie_problem, sharpness
from processing.matching import (
    DESCRIPTOR_SIZE,
    MatchThresholds,
    Neighbourhoods,
    match_arrivals,
    match_event,
    match_threshold,
    nearest_distance,
)
from processing.metrics import face_call
from processing.people import hidden_face_mask
from processing.references import event_references

from .base import (
    DetectedFace,
    FaceBackend,
    FaceMatch,
    IndexResult,
    NewFaceMatch,
    NoFaceError,
    Reference,
    UnusableSelfie,
)

if TYPE_CHECKING:
    from gallery.models import Event, Photo, Selfie

# Tightly cropped portraits give HOG no context; a margin of this fraction of
# the image size on each side lets the detector see a whole head.
PADDING = 0.35
# Images up to this size with no face found get a second, padded look.
PORTRAIT_MAX_SIDE = 400


class _Models:
    def __init__(self) -> None:
        import dlib
        import face_recognition_models

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())


_models: _Models | None = None
_models_lock = threading.Lock()


def models() -> _Models:
    global _models
    if _models is None:
        with _models_lock:
            if _models is None:
                _models = _Models()
    return _models


def detect_faces(
    array: np.ndarray,
    upsample: int,
    *,
    event_id: int | None = None,
    operation: str = "DetectFaces",
    jitters: int = 1,
    adaptive: bool = False,
    grey: bool = False,
    grey_array: np.ndarray | None = None,
) -> list[DetectedFace]:
    """Detect and describe every face in an RGB uint8 array.

    With `adaptive`, `upsample` is the most the detector may use, on photos
    where a first pass at 0 suggests small faces (processing.detection).
    With `grey`, the detector reads the grey image, which is cheaper (event
    photos); selfies keep colour, where a blurred face is still found
    and the guest is told it is blurry rather than that no face was seen.
    `grey_array` is the image's grey version when the caller has it already.
    The call holds a slot of the machine-wide CPU guard (LOCAL_FACE_CONCURRENCY)
    and is recorded in the face-service metrics like a Rekognition call.
    """
    with face_call("local", operation, event_id, images=1) as call:
        faces = _detect_faces(array, upsample, jitters, adaptive, grey, grey_array)
        call.faces_indexed = len(faces)
    return faces


def _detect_faces(
    array: np.ndarray,
    upsample: int,
    jitters: int = 1,
    adaptive: bool = False,
    grey: bool = False,
    grey_array: np.ndarray | None = None,
) -> list[DetectedFace]:
    m = models()
    # Sharpness reads grey (processing.detection); the descriptor always reads colour.
    if grey_array is None:
        grey_array = np.asarray(Image.fromarray(array).convert("L"))
    boxes, _ = find_boxes(m.detector, grey_array if grey else array, upsample, adaptive=adaptive)
    min_size = settings.FACE_MIN_SIZE
    kept = [box for box in boxes if box.width >= min_size and box.height >= min_size]
    if not kept:
        return []
    shapes = m.dlib.full_object_detections()
    for box in kept:
        shapes.append(m.shape_predictor(array, box.rect))
    # One call for all of the photo's faces: the network takes them as one batch,
    # a little quicker than face by face, for the same descriptors.
    descriptors = m.encoder.compute_face_descriptor(array, shapes, jitters)
    return [
        DetectedFace(
            left=box.left,
            top=box.top,
            width=box.width,
            height=box.height,
            confidence=box.score,
            embedding=np.asarray(descriptor, dtype=EMBEDDING_DTYPE),
            quality=face_quality(box.width, box.height, sharpness(grey_array, box), box.score),
        )
        for box, descriptor in zip(kept, descriptors, strict=True)
    ]


def _detect_padded(array: np.ndarray, upsample: int, **options: Any) -> list[DetectedFace]:
    """Detect on the image with a margin around it; boxes in the original image's pixels."""
    pad_y, pad_x = int(array.shape[0] * PADDING), int(array.shape[1] * PADDING)
    padded = np.pad(array, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
    height, width = array.shape[:2]
    faces = []
    for f in detect_faces(padded, upsample, **options):
        left, top = max(f.left - pad_x, 0), max(f.top - pad_y, 0)
        right, bottom = min(f.left - pad_x + f.width, width), min(f.top - pad_y + f.height, height)
        faces.append(replace(f, left=left, top=top, width=max(right - left, 1), height=max(bottom - top, 1)))
    return faces


def selfie_face(faces: Sequence[DetectedFace], width: int, height: int) -> DetectedFace:
    """The selfie's own face: of the faces about as large as the largest, the one nearest the centre.

    Detector boxes come in coarse scale steps, so two faces side by side often
    have the very same size; the person taking a selfie is in the middle of it.
    """
    largest = max(face.area for face in faces)
    candidates = [face for face in faces if face.area >= 0.8 * largest]

    def off_centre(face: DetectedFace) -> float:
        return (face.left + face.width / 2 - width / 2) ** 2 + (face.top + face.height / 2 - height / 2) ** 2

    return min(candidates, key=lambda face: (off_centre(face), -face.area))


class LocalBackend(FaceBackend):
    name = "local"

    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        # open_upright hands over RGB already: no converted copy for the array.
        array = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        grey_array = np.asarray(image.convert("L"))
        upsample = settings.FACE_DETECT_UPSAMPLE
        faces = detect_faces(
            array,
            upsample,
            event_id=photo.event_id,
            operation="IndexPhoto",
            adaptive=True,
            grey=True,
            grey_array=grey_array,
        )
        if not faces and max(image.size) <= PORTRAIT_MAX_SIDE:
            # A small image with no face found is usually a tight portrait crop.
            faces = _detect_padded(array, upsample, event_id=photo.event_id, operation="IndexPhoto", grey=True)
        return IndexResult(faces=faces)

    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        array = np.asarray(image.convert("RGB"))
        jitters = settings.FACE_SELFIE_JITTERS
        faces = detect_faces(array, 1, jitters=jitters)
        if not faces:
            faces = _detect_padded(array, 1, jitters=jitters)
        if not faces:
            raise NoFaceError("No face found in the selfie")
        face = selfie_face(faces, array.shape[1], array.shape[0])
        box = Box(face.left, face.top, face.left + face.width, face.top + face.height, face.confidence, None)
        problem = selfie_problem(array, box)
        if problem == "small":
            raise UnusableSelfie(
                gettext(
                    "Your face is too small in this selfie. Hold the phone closer, so that your face "
                    "fills about a third of the picture, and take it again."
                )
            )
        if problem == "blurry":
            raise UnusableSelfie(
                gettext("This selfie is blurry. Hold the phone still, in good light, and take it again.")
            )
        return face, len(faces)

    def match_faces(
        self, event: Event, photo: Photo, faces: Sequence[DetectedFace], references: Sequence[Reference]
    ) -> list[NewFaceMatch]:
        described = [index for index, face in enumerate(faces) if face.embedding is not None]
        if not described:
            return []
        indices = np.array(described, np.int64)
        new = np.stack([np.asarray(faces[index].embedding, EMBEDDING_DTYPE) for index in described])
        if settings.FACE_MATCH_STRATEGY == "threshold":
            # Each face is decided on its own: the event-wide answer restricted to these faces.
            selfies = {r.user_id: r.matrix() for r in references}
            found = match_threshold(indices, new, selfies, settings.FACE_MATCH_THRESHOLD)
        else:
            qualities = np.array([faces[index].quality for index in described], np.float64)
            found = self._match_arrivals(event, photo, indices, new, qualities, references)
        # A face like those of a group the photographer hid is never matched (processing.people).
        hidden = set(indices[hidden_face_mask(event, np.full(len(indices), -1), new)].tolist())
        return [
            NewFaceMatch(user_id=user, face_index=index, similarity=similarity)
            for user, found_faces in found.items()
            for index, similarity in found_faces.items()
            if index not in hidden
        ]

    def _match_arrivals(
        self,
        event: Event,
        photo: Photo,
        indices: np.ndarray,
        new: np.ndarray,
        qualities: np.ndarray,
        references: Sequence[Reference],
    ) -> dict[int, dict[int, float]]:
        # Only attendees with a selfie near one of the new faces can gain them.
        radius = settings.FACE_MATCH_RADIUS
        selfies = {r.user_id: r.matrix() for r in references if len(r.matrix())}
        near = {user for user, matrix in selfies.items() if nearest_distance(matrix, new) <= radius}
        if not near:
            return {}
        face_ids, _, vectors = event_face_matrix(event)
        matched: dict[int, list[int]] = {user: [] for user in near}
        # The photo's own earlier matches (a previous attempt) are about to be replaced.
        earlier = Match.objects.filter(event=event, user_id__in=near).exclude(photo_id=photo.pk)
        for user_id, face_id in earlier.values_list("user_id", "face_id"):
            matched[user_id].append(face_id)
        groups = {user: np.concatenate([selfies[user], _rows(face_ids, vectors, matched[user])]) for user in near}
        # Attendees' "not me" faces keep their look-alikes out at once, not only at the event-wide pass.
        return match_arrivals(
            indices, new, groups, match_thresholds(), qualities, rejected=rejected_vectors(event, near)
        )

    def match_reference(self, event: Event, reference: Reference) -> list[FaceMatch]:
        # Whether a face is this attendee's depends on the other attendees too
        # (a face goes to one person only), so decide with everyone's selfies.
        references = [r for r in event_references(event) if r.user_id != reference.user_id] + [reference]
        return self.match_event(event, references, {reference.user_id})

    def match_event(
        self, event: Event, references: Sequence[Reference], users: Collection[int] | None = None
    ) -> list[FaceMatch]:
        faces = event_faces(event)
        # Faces of a group the photographer hid take no part in matching (processing.people).
        shown = ~hidden_face_mask(event, faces.face_ids, faces.vectors)
        face_ids, photo_ids, vectors = faces.face_ids[shown], faces.photo_ids[shown], faces.vectors[shown]
        selfies = {r.user_id: r.matrix() for r in references}
        if settings.FACE_MATCH_STRATEGY == "threshold":
            if users is not None:
                selfies = {u: m for u, m in selfies.items() if u in users}
            found = match_threshold(face_ids, vectors, selfies, settings.FACE_MATCH_THRESHOLD)
        else:
            constraints = event_constraints(event)
            thresholds = match_thresholds()
            found = match_event(
                face_ids,
                vectors,
                photo_ids,
                selfies,
                thresholds,
                users,
                faces.qualities[shown],
                constraints=constraints,
                neighbourhoods=faces.neighbourhoods(shown, photo_ids, vectors, thresholds),
            )
        # face_ids is sorted, so a matched face's photo is a binary search away.
        return [
            FaceMatch(
                user_id=user_id,
                face_id=face_id,
                photo_id=int(photo_ids[np.searchsorted(face_ids, face_id)]),
                similarity=similarity,
            )
            for user_id, faces in found.items()
            for face_id, similarity in faces.items()
        ]


def match_thresholds() -> MatchThresholds:
    return MatchThresholds(
        single=settings.FACE_MATCH_THRESHOLD,
        group=settings.FACE_MATCH_GROUP_THRESHOLD,
        radius=settings.FACE_MATCH_RADIUS,
        attach=settings.FACE_MATCH_PIECE_THRESHOLD,
        margin=settings.FACE_MATCH_PIECE_MARGIN,
        cohort=settings.FACE_MATCH_COHORT,
        live=settings.FACE_MATCH_LIVE_THRESHOLD,
    )


def _rows(face_ids: np.ndarray, vectors: np.ndarray, wanted: Sequence[int]) -> np.ndarray:
    """The descriptors of `wanted` faces (those still present) from an id-sorted matrix."""
    if not wanted or not len(face_ids):
        return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
    ids = np.asarray(wanted)
    positions = np.minimum(np.searchsorted(face_ids, ids), len(face_ids) - 1)
    return vectors[positions[face_ids[positions] == ids]]


@dataclass
class EventFaces:
    """An event's described faces, in face id order."""

    rows: int  # Face rows seen, with or without a descriptor
    last_id: int
    face_ids: np.ndarray
    photo_ids: np.ndarray
    vectors: np.ndarray
    qualities: np.ndarray
    # The neighbourhoods of the faces last shown (processing.matching.Neighbourhoods), with that mask.
    kept: tuple[np.ndarray, Neighbourhoods] | None = None

    def neighbourhoods(
        self, shown: np.ndarray, photo_ids: np.ndarray, vectors: np.ndarray, thresholds: MatchThresholds
    ) -> Neighbourhoods:
        """The neighbourhoods of the faces `shown` (a mask of these faces), kept while these faces last.

        A face's scale costs its distances to every face of the event: kept,
        each is computed once per process rather than at every search. When
        faces were added since (the copy this one extends kept its
        neighbourhoods, `event_faces`), the kept ones are brought up to date
        with the new faces alone. They are built outside the lock (the
        event's median is about a second at 50 000 faces), so a search of
        another event does not wait; two threads that build the same one at
        once keep the later.
        """
        with _event_faces_lock:
            kept = self.kept
        earlier = None
        if kept is not None:
            mask, found = kept
            if np.array_equal(mask, shown) and found.fits(int(shown.sum()), thresholds):
                return found
            if len(mask) <= len(shown) and np.array_equal(mask, shown[: len(mask)]):
                earlier = found
        built = Neighbourhoods(vectors, photo_ids, thresholds, earlier)
        with _event_faces_lock:
            self.kept = (shown.copy(), built)
        return built


_EVENT_CACHE_SIZE = 8
_event_faces: OrderedDict[int, EventFaces] = OrderedDict()
_event_faces_lock = threading.Lock()


def _load_faces(event: Event, after_id: int = 0) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rows = list(
        Face.objects.filter(event=event, id__gt=after_id)
        .order_by("id")
        .values_list("id", "photo_id", "embedding", "quality")
    )
    described = [r for r in rows if r[2] is not None]
    face_ids = np.fromiter((r[0] for r in described), np.int64, len(described))
    photo_ids = np.fromiter((r[1] for r in described), np.int64, len(described))
    vectors = np.frombuffer(b"".join(bytes(r[2] or b"") for r in described), dtype=EMBEDDING_DTYPE)
    qualities = np.fromiter((r[3] for r in described), np.float64, len(described))
    return len(rows), face_ids, photo_ids, vectors.reshape(len(described), DESCRIPTOR_SIZE), qualities


def event_face_matrix(event: Event) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face ids, photo ids and an (n, 128) float32 matrix of the event's descriptors (see `event_faces`)."""
    faces = event_faces(event)
    return faces.face_ids, faces.photo_ids, faces.vectors


def event_faces(event: Event) -> EventFaces:
    """Face ids, photo ids, an (n, 128) float32 matrix of descriptors and the qualities of the event's faces.

    Kept per process and extended with the faces added since, so that a search
    in a large event does not read every descriptor from the database again.
    Face ids only grow, so the row count and the last id tell whether the copy
    is whole; after any deletion it is read again.
    """
    stats = Face.objects.filter(event=event).aggregate(rows=Count("id"), last=Max("id"))
    rows, last_id = stats["rows"], stats["last"] or 0
    with _event_faces_lock:
        cached = _event_faces.get(event.pk)
    if cached is None or cached.last_id > last_id or cached.rows > rows:
        cached = EventFaces(0, 0, *_empty())
    if (cached.rows, cached.last_id) != (rows, last_id):
        added, face_ids, photo_ids, vectors, qualities = _load_faces(event, cached.last_id)
        if cached.rows + added == rows:
            cached = EventFaces(
                rows,
                last_id,
                np.concatenate([cached.face_ids, face_ids]),
                np.concatenate([cached.photo_ids, photo_ids]),
                np.concatenate([cached.vectors, vectors]),
                np.concatenate([cached.qualities, qualities]),
                cached.kept,
            )
        else:
            cached = EventFaces(rows, last_id, *_load_faces(event)[1:])
    with _event_faces_lock:
        _event_faces[event.pk] = cached
        _event_faces.move_to_end(event.pk)
        while len(_event_faces) > _EVENT_CACHE_SIZE:
            _event_faces.popitem(last=False)
    return cached


def forget_cached_faces() -> None:
    """Drop this process's copies of event descriptors (tests roll ids back)."""
    with _event_faces_lock:
        _event_faces.clear()


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros((0, DESCRIPTOR_SIZE), EMBEDDING_DTYPE),
        np.zeros(0, np.float64),
    )
