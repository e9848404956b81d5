"""Photo files: each rendition served only to those who may see the photo."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.translation import gettext as _
from rest_framework.exceptions import AuthenticationFailed

from gallery import access
from gallery.authentication import CachedTokenAuthentication
from gallery.serving import file_response, full_size_download
from processing.services import face_crop_jpeg, face_thumbnail

# The renditions a URL may name, and the Photo file field that holds each.
VARIANTS = {"thumbnail": "thumbnail", "web": "web", "original": "original"}


def media_user(request: HttpRequest) -> access.AnyUser:
    """The session user, or the user of an API token: API clients fetch the URLs the API gives them."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = CachedTokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return request.user
    return found[0] if found else request.user


def photo_file(request: HttpRequest, photo_id: int, variant: str) -> HttpResponseBase:
    if variant not in VARIANTS:
        raise Http404(_("Unknown rendition"))
    user = media_user(request)
    photo = access.downloadable_photo(user, photo_id)
    if variant == "original":
        # Guests of a watermarked event get the watermarked copy instead.
        download = full_size_download(user, photo)
        if download is None:
            raise Http404(_("This rendition is not ready yet"))
        return file_response(
            download.file, content_type=download.content_type, download=True, filename=download.filename
        )
    file = getattr(photo, VARIANTS[variant])
    if not file:
        raise Http404(_("This rendition is not ready yet"))
    # Thumbnails and web sizes are always written as JPEG.
    return file_response(file, content_type="image/jpeg")


def face_crop(request: HttpRequest, face_id: int) -> HttpResponse:
    """A face cut from its clean original, for the event's photographer and staff (the people view)."""
    face = access.owned_face(media_user(request), face_id)
    response = HttpResponse(face_crop_jpeg(face), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response


def photo_face_file(request: HttpRequest, photo_id: int, face_id: int) -> HttpResponseBase:
    """A square thumbnail of the photo around one of its faces (processing.crops says how and why)."""
    photo, face = access.photo_face(media_user(request), photo_id, face_id)
    if not photo.web:
        raise Http404(_("This rendition is not ready yet"))
    response = HttpResponse(face_thumbnail(photo, face), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
