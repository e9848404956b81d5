"""The embedded face backend: dlib's HOG detector, 5-point landmarks and ResNet descriptor.

Only the public-domain 5-point landmark model and the ResNet descriptor are
used. Models load once per process, on first use, never at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings

from gallery.models import EMBEDDING_DTYPE, Face
from processing.metrics import face_call

from .base import (
    DetectedFace,
    FaceBackend,
    FaceMatch,
    IndexResult,
    NoFaceError,
    Reference,
)

if TYPE_CHECKING:
    from PIL import Image

    from gallery.models import Event, Photo, Selfie

# Tightly cropped portraits give HOG no context; a margin of this fraction of
# the image size on each side lets the detector see a whole head.
SELFIE_PADDING = 0.35


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


def distance_to_similarity(distance: float | np.ndarray) -> Any:
    """Map a descriptor distance to a 0..1 score where higher means more alike."""
    return np.clip(1.0 - np.asarray(distance) / 1.2, 0.0, 1.0)


def detect_faces(
    array: np.ndarray, upsample: int, *, event_id: int | None = None, operation: str = "DetectFaces"
) -> list[DetectedFace]:
    """Detect and describe every face in an RGB uint8 array.

    The call holds a slot of the machine-wide CPU guard (LOCAL_FACE_CONCURRENCY)
    and is recorded in the face-service metrics like a Rekognition call.
    """
    with face_call("local", operation, event_id, images=1) as call:
        faces = _detect_faces(array, upsample)
        call.faces_indexed = len(faces)
    return faces


def _detect_faces(array: np.ndarray, upsample: int) -> list[DetectedFace]:
    m = models()
    rects, scores, _ = m.detector.run(array, upsample, 0.0)
    faces = []
    height, width = array.shape[:2]
    min_size = settings.FACE_MIN_SIZE
    for rect, score in zip(rects, scores, strict=True):
        left, top = max(rect.left(), 0), max(rect.top(), 0)
        right, bottom = min(rect.right(), width - 1), min(rect.bottom(), height - 1)
        if right - left < min_size or bottom - top < min_size:
            continue
        shape = m.shape_predictor(array, rect)
        descriptor = np.asarray(m.encoder.compute_face_descriptor(array, shape), dtype=EMBEDDING_DTYPE)
        faces.append(
            DetectedFace(
                left=left,
                top=top,
                width=right - left,
                height=bottom - top,
                confidence=float(score),
                embedding=descriptor,
            )
        )
    return faces


def _pad(array: np.ndarray, fraction: float) -> tuple[np.ndarray, int, int]:
    pad_y, pad_x = int(array.shape[0] * fraction), int(array.shape[1] * fraction)
    padded = np.pad(array, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
    return padded, pad_x, pad_y


class LocalBackend(FaceBackend):
    name = "local"

    @property
    def threshold(self) -> float:
        return float(settings.FACE_MATCH_THRESHOLD)

    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        faces = detect_faces(
            np.asarray(image.convert("RGB")),
            settings.FACE_DETECT_UPSAMPLE,
            event_id=photo.event_id,
            operation="IndexPhoto",
        )
        return IndexResult(faces=faces)

    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        array = np.asarray(image.convert("RGB"))
        faces = detect_faces(array, 1)
        if not faces:
            padded, pad_x, pad_y = _pad(array, SELFIE_PADDING)
            faces = [
                DetectedFace(
                    left=f.left - pad_x,
                    top=f.top - pad_y,
                    width=f.width,
                    height=f.height,
                    confidence=f.confidence,
                    embedding=f.embedding,
                )
                for f in detect_faces(padded, 1)
            ]
        if not faces:
            raise NoFaceError("No face found in the selfie")
        return max(faces, key=lambda f: f.area), len(faces)

    def match_faces(self, event: Event, faces: Sequence[Face], references: Sequence[Reference]) -> list[FaceMatch]:
        return self._match(faces, references)

    def match_reference(self, event: Event, reference: Reference) -> list[FaceMatch]:
        faces = Face.objects.filter(event=event, embedding__isnull=False).only("id", "photo_id", "embedding")
        return self._match(list(faces), [reference])

    def _match(self, faces: Sequence[Face], references: Sequence[Reference]) -> list[FaceMatch]:
        usable = [face for face in faces if face.embedding is not None]
        if not usable or not references:
            return []
        face_matrix = np.stack([face.vector for face in usable])
        matches = []
        for reference in references:
            selfie_vectors = [s.vector for s in reference.selfies if s.embedding is not None]
            if not selfie_vectors:
                continue
            reference_matrix = np.stack([v for v in selfie_vectors if v is not None])
            distances = np.linalg.norm(face_matrix[:, None, :] - reference_matrix[None, :, :], axis=2).min(axis=1)
            for index in np.flatnonzero(distances < self.threshold):
                matches.append(
                    FaceMatch(
                        user_id=reference.user_id,
                        face_id=usable[index].id,
                        photo_id=usable[index].photo_id,
                        similarity=float(distance_to_similarity(distances[index])),
                    )
                )
        return matches
