"""A face backend for tests and drills whose subject is not face recognition.

Synthetic PNGs carry "faces" as solid squares in marker colours; each colour is
one person, with a one-hot embedding, so matching behaves like the real thing
without loading dlib. Select it with FACE_BACKEND=testsupport.fakes.FakeBackend
(`testsupport.markers.FAKE_BACKEND`).
"""

from __future__ import annotations

import os
import time

import numpy as np
from PIL import Image

from gallery.models import EMBEDDING_DTYPE, Photo, Selfie
from processing.backends.base import (
    DetectedFace,
    IndexResult,
    NoFaceError,
    PermanentBackendError,
    TransientBackendError,
)
from processing.backends.local import LocalBackend
from testsupport.markers import MARKERS

MIN_MARKER_PIXELS = 64
# Marker people that make the fake backend fail, for queue tests.
FLAKY = 6  # transient error on the first attempt
POISON = 7  # permanent error


def marker_faces(image: Image.Image) -> list[DetectedFace]:
    """One face per marker colour that covers enough pixels, with a one-hot embedding."""
    array = np.asarray(image.convert("RGB"))
    faces = []
    for index, colour in enumerate(MARKERS):
        mask = np.all(array == colour, axis=2)
        if mask.sum() < MIN_MARKER_PIXELS:
            continue
        ys, xs = np.nonzero(mask)
        embedding = np.zeros(128, dtype=EMBEDDING_DTYPE)
        embedding[index] = 1.0
        faces.append(
            DetectedFace(
                left=int(xs.min()),
                top=int(ys.min()),
                width=int(xs.max() - xs.min() + 1),
                height=int(ys.max() - ys.min() + 1),
                embedding=embedding,
            )
        )
    return faces


class FakeBackend(LocalBackend):
    """The local backend's matching, with marker squares instead of dlib's detection."""

    name = "fake"

    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        # Queue tests run this backend in a real cluster and need slow photos.
        time.sleep(float(os.environ.get("FAKE_BACKEND_DELAY", "0")))
        faces = marker_faces(image)
        people = {int(np.argmax(face.embedding)) for face in faces if face.embedding is not None}
        if POISON in people:
            raise PermanentBackendError("poisoned test image")
        if FLAKY in people and photo.attempts < 2:
            raise TransientBackendError("flaky test image")
        return IndexResult(faces=faces)

    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        faces = marker_faces(image)
        if not faces:
            raise NoFaceError("No face found in the selfie")
        return max(faces, key=lambda f: f.area), len(faces)
