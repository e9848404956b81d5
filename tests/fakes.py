"""A face backend for tests whose subject is not face recognition.

Synthetic PNGs carry "faces" as solid squares in marker colours; each colour is
one person, with a one-hot embedding, so matching behaves like the real thing
without loading dlib.
"""

from __future__ import annotations

import io
import os
import time

import numpy as np
from PIL import Image, ImageDraw

from gallery.models import EMBEDDING_DTYPE
from processing.backends.base import (
    DetectedFace,
    IndexResult,
    NoFaceError,
    PermanentBackendError,
    TransientBackendError,
)
from processing.backends.local import LocalBackend
from tests.markers import MARKERS

MIN_MARKER_PIXELS = 64
# Marker people that make the fake backend fail, for queue tests.
FLAKY = 6  # transient error on the first attempt
POISON = 7  # permanent error


def marker_faces(image: Image.Image) -> list[DetectedFace]:
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
    name = "fake"

    def index_photo(self, photo, image):  # type: ignore[no-untyped-def]
        # Queue tests run this backend in a real cluster and need slow photos.
        time.sleep(float(os.environ.get("FAKE_BACKEND_DELAY", "0")))
        faces = marker_faces(image)
        people = {int(np.argmax(face.embedding)) for face in faces}
        if POISON in people:
            raise PermanentBackendError("poisoned test image")
        if FLAKY in people and photo.attempts < 2:
            raise TransientBackendError("flaky test image")
        return IndexResult(faces=faces)

    def enrol_selfie(self, selfie, image):  # type: ignore[no-untyped-def]
        faces = marker_faces(image)
        if not faces:
            raise NoFaceError("No face found in the selfie")
        return max(faces, key=lambda f: f.area), len(faces)


def scene_png(people: list[int], size: tuple[int, int] = (640, 480), seed: int = 0, face: int = 60) -> bytes:
    """A PNG with a marker square for each person index in `people`."""
    image = Image.new("RGB", size, (128 + seed % 64, 128, 128))
    draw = ImageDraw.Draw(image)
    for slot, person in enumerate(people):
        left = 20 + slot * (face + 20)
        draw.rectangle([left, 40, left + face - 1, 40 + face - 1], fill=MARKERS[person])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
