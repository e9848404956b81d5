"""Answering a media request once access is checked, without holding a web worker for the transfer.

- S3 storage: a redirect to a presigned URL that expires after MEDIA_URL_TTL
  seconds and carries the Content-Type and Content-Disposition to answer with.
- Local files with MEDIA_ACCEL=nginx: an empty answer whose X-Accel-Redirect
  names the file under the internal location MEDIA_URL, which nginx serves.
- Local files with MEDIA_ACCEL=sendfile: X-Sendfile with the file's path.
- Otherwise Django streams the file, as a single machine without a proxy needs.

What a full-size download is depends on who asks (`full_size_download`): the
original for the event's photographer and staff; for guests the original
only when the event has no watermark or lets guests have originals
(`Event.guests_get_originals`), the watermarked JPEG otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.utils.http import content_disposition_header

from gallery.formats import content_type_for
from gallery.models import Event, Photo


@dataclass(frozen=True)
class Download:
    """The stored file a full-size download delivers, with the name and type to give it."""

    file: FieldFile
    content_type: str
    filename: str
    size: int


def gets_original(user: Any, event: Event) -> bool:
    """Whether `user`, who may see the event's photos, downloads originals rather than watermarked copies."""
    if getattr(user, "is_staff", False) or event.owner_id == getattr(user, "pk", None):
        return True
    return event.guests_get_originals or not event.has_watermark


def full_size_download(user: Any, photo: Photo, event: Event | None = None) -> Download | None:
    """What `user` gets when downloading `photo` in full; None while nothing suitable is ready.

    A guest who may not have the original gets the watermarked full-size JPEG;
    a photo the queue has not marked yet (just uploaded, or the watermark just
    set) has nothing for them until it has. Pass the photo's `event` when it
    is at hand, to spare a query per photo.
    """
    if gets_original(user, event or photo.event):
        return Download(photo.original, content_type_for(photo.format), photo.filename, photo.size_bytes)
    if not photo.watermarked:
        return None
    filename = f"{PurePosixPath(photo.filename).stem or 'photo'}.jpg"
    # The size is only a hint for the ZIP headers; asking the storage would cost a request per photo.
    return Download(photo.watermarked, "image/jpeg", filename, 0)


def file_response(
    file: FieldFile, *, content_type: str, download: bool = False, filename: str = "", cache_seconds: int = 86400
) -> HttpResponseBase:
    """The answer that delivers `file`; the caller has already checked the user may have it."""
    disposition = content_disposition_header(download, filename) if (download or filename) else None
    if settings.STORAGE_BACKEND == "s3":
        parameters = {"ResponseContentType": content_type}
        if disposition:
            parameters["ResponseContentDisposition"] = disposition
        url = file.storage.url(file.name, parameters=parameters, expire=settings.MEDIA_URL_TTL)  # type: ignore[call-arg]
        response: HttpResponseBase = HttpResponseRedirect(url)
        # The presigned URL is personal and short-lived: never cache the redirect.
        response["Cache-Control"] = "private, no-store"
        return response
    if settings.MEDIA_ACCEL:
        response = HttpResponse(content_type=content_type)
        if settings.MEDIA_ACCEL == "nginx":
            response["X-Accel-Redirect"] = settings.MEDIA_URL + quote(str(file.name))
        else:
            response["X-Sendfile"] = file.path
        if disposition:
            response["Content-Disposition"] = disposition
    else:
        response = FileResponse(file.open("rb"), as_attachment=download, filename=filename, content_type=content_type)
    response["Cache-Control"] = f"private, max-age={cache_seconds}"
    return response
