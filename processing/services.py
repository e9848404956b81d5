"""The named entry points through which pages, API, admin and commands call processing.

Nothing outside `processing` imports its other modules: this is the contract.
Every function here does its face-backend and network work outside database
transactions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from gallery.models import Event, Photo
from processing.backends.base import BackendError, NoFaceError
from processing.images import ImageInfo, InvalidImage, inspect_image
from processing.pipeline import ForgottenFaceData, enrol_selfie, forget_attendee, refresh_member_matches
from processing.tasks import enqueue_photos, requeue_photo, waiting_count

if TYPE_CHECKING:
    from django.contrib.auth.models import User

__all__ = [
    "BackendError",
    "ForgottenFaceData",
    "ImageInfo",
    "InvalidImage",
    "NoFaceError",
    "delete_account",
    "delete_event",
    "delete_photo",
    "enqueue_photos",
    "enrol_selfie",
    "forget_attendee",
    "inspect_image",
    "refresh_member_matches",
    "requeue_photo",
    "waiting_count",
]


def delete_photo(photo: Photo) -> None:
    """Delete one photo with its faces (backend copies too), matches and files."""
    event = photo.event
    with transaction.atomic():
        photo.delete()
    event.bump_version()


def delete_event(event: Event) -> None:
    """Delete an event with its photos, faces (the backend's collection too), matches and files."""
    with transaction.atomic():
        event.delete()


def delete_account(user: User) -> ForgottenFaceData:
    """Delete an attendee's face data (backend first), then the account and all it owns."""
    forgotten = forget_attendee(user)
    with transaction.atomic():
        user.delete()
    return forgotten
