"""Accepting photographer uploads: validate, deduplicate, store, enqueue."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from gallery.models import Event, Photo, PhotoStatus
from processing.services import ImageInfo, InvalidImage, enqueue_photos, inspect_image, waiting_count

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.core.files.uploadedfile import UploadedFile


# Seconds a client is told (Retry-After) to wait when the queue is full.
QUEUE_FULL_RETRY_AFTER = 30


class QueueFull(Exception):
    """Accepting the files would put more photos in the queue than allowed."""


@dataclass
class Accepted:
    """A file that is now a photo of the event (or already was one: `duplicate`).

    `index` is the file's 0-based position among the uploads and `filename` the
    name it was sent with (display-sanitised); a duplicate's `photo.filename`
    may differ, being the name the stored copy came with.
    """

    photo: Photo
    duplicate: bool
    index: int
    filename: str


@dataclass
class Rejected:
    """A file that was refused, with its position among the uploads and why."""

    filename: str
    error: str
    index: int


@dataclass
class _Checked:
    upload: UploadedFile
    index: int
    filename: str
    sha256: str
    info: ImageInfo


def display_name(raw: str | None) -> str:
    """The client's file name reduced to safe display text; never used as a path."""
    name = os.path.basename((raw or "").replace("\\", "/"))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name) > 200:
        stem, ext = os.path.splitext(name)
        name = stem[: 200 - len(ext[:20])] + ext[:20]
    return name or "photo"


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    return digest.hexdigest()


def _check(index: int, upload: UploadedFile) -> _Checked | Rejected:
    filename = display_name(upload.name)
    limit = settings.MAX_UPLOAD_MB * 1024 * 1024
    if upload.size is not None and upload.size > limit:
        return Rejected(filename, _("File is larger than %(limit)s MB") % {"limit": settings.MAX_UPLOAD_MB}, index)
    try:
        info = inspect_image(upload)  # type: ignore[arg-type]
    except InvalidImage as exc:
        return Rejected(filename, str(exc), index)
    return _Checked(upload=upload, index=index, filename=filename, sha256=_sha256(upload), info=info)


def accept_uploads(
    event: Event, user: AbstractBaseUser, uploads: Sequence[UploadedFile], *, enqueue: bool = True
) -> tuple[list[Accepted], list[Rejected]]:
    """Validate and store uploaded photos, then queue the new ones for processing.

    Raises `QueueFull` before storing anything if the queue has no room. With
    `enqueue=False` the caller processes the photos itself (evaluation runs).
    Each result carries the `index` of its file in `uploads`.
    """
    accepted: list[Accepted] = []
    rejected: list[Rejected] = []
    checked: list[_Checked] = []
    for index, upload in enumerate(uploads):
        result = _check(index, upload)
        if isinstance(result, Rejected):
            rejected.append(result)
        else:
            checked.append(result)
    existing = {p.sha256: p for p in Photo.objects.filter(event=event, sha256__in=[c.sha256 for c in checked])}
    fresh: dict[str, _Checked] = {}
    # A photo stored by a request that died before handing it to the queue: the
    # client got no answer and sends it again, so it goes to the queue now rather
    # than at the next recovery sweep. A second task for it finds nothing to claim.
    never_queued = sorted(
        {p.pk for p in existing.values() if p.status == PhotoStatus.QUEUED and p.dispatched_at is None}
    )
    for item in checked:
        if item.sha256 in existing:
            accepted.append(Accepted(existing[item.sha256], duplicate=True, index=item.index, filename=item.filename))
        elif item.sha256 in fresh:
            rejected.append(Rejected(item.filename, _("The same file appears twice in this upload"), item.index))
        else:
            fresh[item.sha256] = item
    if enqueue and fresh and waiting_count() + len(fresh) > settings.PHOTO_QUEUE_MAX_SIZE:
        raise QueueFull
    new_ids: list[int] = []
    for item in fresh.values():
        photo, duplicate = _store(event, user, item)
        accepted.append(Accepted(photo, duplicate=duplicate, index=item.index, filename=item.filename))
        if not duplicate:
            new_ids.append(photo.pk)
    if new_ids and enqueue:
        event.bump_version()
    if (new_ids or never_queued) and enqueue:
        transaction.on_commit(lambda: enqueue_photos(new_ids + never_queued))
    return accepted, rejected


def _store(event: Event, user: AbstractBaseUser, item: _Checked) -> tuple[Photo, bool]:
    photo = Photo(
        event=event,
        uploaded_by_id=user.pk,
        filename=item.filename,
        sha256=item.sha256,
        format=item.info.format,
        size_bytes=item.upload.size or 0,
        width=item.info.width,
        height=item.info.height,
        status=PhotoStatus.QUEUED,
    )
    item.upload.seek(0)
    photo.original.save(item.filename, item.upload, save=False)
    try:
        with transaction.atomic():
            photo.save()
    except IntegrityError:
        # A concurrent upload of the same bytes won the race.
        photo.original.delete(save=False)
        return Photo.objects.get(event=event, sha256=item.sha256), True
    return photo, False
