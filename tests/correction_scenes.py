"""An event whose face descriptors are set by hand, for the tests of "not me" and "that's me".

Marker squares (testsupport.fakes) give each face its box; its descriptor comes
from SCENE, by file name and left-to-right position, so that every distance is
known:

- a1, a2, a3: the attendee, 0.2 from the selfie;
- x1, x2, x3: a stranger who looks like them, 0.38 from the selfie and 0.21
  from each other: the matcher gives him to the attendee until they say "not me";
- y1 (with z beside him), y2: someone 0.7 from the selfie, whom the matcher
  never gives the attendee until they say "that's me" on y1.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from gallery.models import EMBEDDING_DTYPE, Photo, Selfie
from processing.backends.base import DetectedFace, IndexResult
from processing.matching import DESCRIPTOR_SIZE
from testsupport.fakes import FakeBackend
from testsupport.markers import scene_png

# The backend's dotted path, for FACE_BACKEND or backends.BACKENDS.
SCENE_BACKEND = "tests.correction_scenes.SceneBackend"


def unit(index: int, length: float) -> np.ndarray:
    vector = np.zeros(DESCRIPTOR_SIZE, EMBEDDING_DTYPE)
    vector[index] = length
    return vector


SELFIE = unit(0, 0.5)
STRANGER = SELFIE + unit(1, 0.35)
OTHER = unit(5, 0.5)
SCENE: dict[str, list[np.ndarray]] = {
    "a1.png": [SELFIE + unit(10, 0.2)],
    "a2.png": [SELFIE + unit(11, 0.2)],
    "a3.png": [SELFIE + unit(12, 0.2)],
    "x1.png": [STRANGER + unit(20, 0.15)],
    "x2.png": [STRANGER + unit(21, 0.15)],
    "x3.png": [STRANGER + unit(22, 0.15)],
    "y1.png": [OTHER + unit(30, 0.1), unit(6, 0.5)],
    "y2.png": [OTHER + unit(31, 0.1)],
}
# Photos uploaded at first; x3 arrives later in some tests.
FIRST = ["a1.png", "a2.png", "x1.png", "a3.png", "x2.png", "y1.png", "y2.png"]


def scene_file(name: str, seed: int = 0) -> bytes:
    """The photo `name` of SCENE: one marker square per face, left to right."""
    return scene_png(list(range(len(SCENE[name]))), seed=seed + 1)


class SceneBackend(FakeBackend):
    """The marker backend with SCENE's descriptors (and SELFIE for every selfie)."""

    name = "scene"

    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        result = super().index_photo(photo, image)
        vectors = SCENE.get(photo.filename)
        if vectors is None:
            return result
        faces = sorted(result.faces, key=lambda face: face.left)
        return IndexResult(
            faces=[dataclasses.replace(face, embedding=v) for face, v in zip(faces, vectors, strict=True)]
        )

    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        face, count = super().enrol_selfie(selfie, image)
        return dataclasses.replace(face, embedding=SELFIE.copy()), count
