"""The face backend interface.

A backend turns images into faces and says which faces belong to which
attendee. The pipeline calls it in this order, and every call must be safe to
repeat, because a redelivered task runs it again:

1. ``index_photo(photo, image)`` once per processing attempt of an event photo.
   ``image`` is the upright RGB analysis-size image. It returns the faces found,
   with boxes in that image's pixels, and the reasons for faces it skipped.
2. ``match_faces(event, photo, faces, references)`` right after, with the faces
   ``index_photo`` returned, before anything is stored: which of these new
   faces belong to which attendee reference. A ``NewFaceMatch`` names its face
   by position in ``faces``; the pipeline turns it into a ``FaceMatch`` once the
   faces have rows. The photo's earlier faces and matches, from a previous
   attempt, are still stored at that point and must be ignored.
3. ``enrol_selfie(selfie, image)`` when an attendee uploads a selfie. It returns
   the largest face and the number of faces found, or raises ``NoFaceError``.
4. ``match_reference(event, reference)`` when a selfie changes or an attendee
   joins: every stored face of the event that belongs to the reference.
5. ``forget_faces`` / ``forget_selfie`` / ``forget_event`` when face data is
   deleted. They delete whatever the backend stored outside our database.
   ``forget_faces`` and ``forget_event`` run after the rows are gone and use
   only the ids and ``external_id`` of what they are given.

The pipeline never calls a backend inside a database transaction: a backend
call may take seconds (network, retries, a CPU slot) and must not hold the
database's write lock. A backend may read the database, and may write its own
bookkeeping in transactions of its own, but never calls the network inside them.
Backends take what they need as arguments and never import the pipeline.

Errors: ``TransientBackendError`` for anything worth retrying (timeouts,
throttling), ``PermanentBackendError`` for input that will never work.
Backends import their heavy libraries lazily, inside the methods that need them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from gallery.models import Event, Face, Photo, Selfie


class BackendError(Exception):
    """A face backend call failed."""


class TransientBackendError(BackendError):
    """The call may succeed if repeated later (timeout, throttling, outage)."""


class PermanentBackendError(BackendError):
    """The input can never be processed (corrupt image, unsupported data)."""


class NoFaceError(BackendError):
    """The image has no usable face."""


class UnusableSelfie(NoFaceError):
    """The selfie has a face, but too small or blurry to match; the message says what to fix, translated."""


@dataclass(frozen=True)
class DetectedFace:
    """A face; the box is in pixels of the image the backend was given."""

    left: int
    top: int
    width: int
    height: int
    confidence: float = 1.0
    embedding: np.ndarray | None = None
    external_id: str = ""
    # 0..1 from size, sharpness and detector score (processing.detection); 1 when unknown.
    quality: float = 1.0

    @property
    def area(self) -> int:
        return self.width * self.height


@dataclass
class IndexResult:
    faces: list[DetectedFace]
    unindexed_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reference:
    """An attendee's face reference: one or more selfie faces."""

    user_id: int
    selfies: Sequence[Selfie]

    def matrix(self) -> np.ndarray:
        """The selfies' descriptors as rows (none for backends that keep no descriptors)."""
        vectors = [v for s in self.selfies if (v := s.vector) is not None]
        return np.stack(vectors) if vectors else np.zeros((0, 128), np.float32)


@dataclass(frozen=True)
class FaceMatch:
    """A stored face that belongs to an attendee."""

    user_id: int
    face_id: int
    photo_id: int
    similarity: float


@dataclass(frozen=True)
class NewFaceMatch:
    """A face of the photo being processed, not stored yet, that belongs to an attendee.

    `face_index` is the face's position in the list given to `match_faces`.
    """

    user_id: int
    face_index: int
    similarity: float


class FaceBackend(ABC):
    name: str = ""

    @abstractmethod
    def index_photo(self, photo: Photo, image: Image.Image) -> IndexResult:
        """Detect (and describe or index) every face of an event photo."""

    @abstractmethod
    def enrol_selfie(self, selfie: Selfie, image: Image.Image) -> tuple[DetectedFace, int]:
        """Return the largest face of a selfie and how many faces it shows."""

    @abstractmethod
    def match_faces(
        self, event: Event, photo: Photo, faces: Sequence[DetectedFace], references: Sequence[Reference]
    ) -> list[NewFaceMatch]:
        """Which of `faces`, the new faces of `photo` (not stored yet), belong to which reference."""

    @abstractmethod
    def match_reference(self, event: Event, reference: Reference) -> list[FaceMatch]:
        """Every stored face of `event` that belongs to `reference`."""

    def match_event(
        self, event: Event, references: Sequence[Reference], users: Collection[int] | None = None
    ) -> list[FaceMatch] | None:
        """Every match of the event at once (of `users` only, if given), or None if the backend only matches
        incrementally.

        Backends that can decide event-wide (the local one) give results that
        do not depend on the order photos and selfies arrived in.
        """
        return None

    def forget_faces(self, event: Event, faces: Sequence[Face]) -> None:  # noqa: B027
        """Delete faces stored outside our database. Default: nothing to do."""

    def forget_selfie(self, selfie: Selfie) -> None:  # noqa: B027
        """Delete a selfie's face stored outside our database."""

    def forget_event(self, event: Event) -> None:  # noqa: B027
        """Delete everything stored for an event outside our database."""

    def remember_match(self, event: Event, user_id: int, faces: Sequence[Face]) -> int:
        """The attendee confirmed these stored faces are theirs; returns how many the backend learnt.

        Default: nothing to learn (matches live in our database only).
        """
        return 0

    def forget_match(self, event: Event, user_id: int, faces: Sequence[Face]) -> int:
        """The attendee said "not me" to these stored faces; returns how many the backend unlearnt.

        Default: nothing to unlearn.
        """
        return 0
