"""Answering a media request once access is checked, without holding a web worker for the transfer.

- S3 storage: a redirect to a presigned URL that expires after MEDIA_URL_TTL
  seconds and carries the Content-Type and Content-Disposition to answer with.
- Local files with MEDIA_ACCEL=nginx: an empty answer whose X-Accel-Redirect
  names the file under the internal location MEDIA_URL, which nginx serves.
- Local files with MEDIA_ACCEL=sendfile: X-Sendfile with the file's path.
- Otherwise Django streams the file, as a single machine without a proxy needs.
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.utils.http import content_disposition_header


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
