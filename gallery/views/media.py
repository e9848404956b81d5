"""Photo files: each rendition served only to those who may see the photo."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils.translation import gettext as _
from rest_framework.exceptions import AuthenticationFailed

from gallery import access
from gallery.authentication import CachedTokenAuthentication
from gallery.formats import content_type_for
from gallery.models import Photo
from gallery.serving import file_response

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
    photo = access.visible_photo(media_user(request), photo_id)
    file = getattr(photo, VARIANTS[variant])
    if not file:
        raise Http404(_("This rendition is not ready yet"))
    download = variant == "original"
    return file_response(
        file,
        content_type=_content_type(photo, variant),
        download=download,
        filename=photo.filename if download else "",
    )


def _content_type(photo: Photo, variant: str) -> str:
    # Thumbnails and web sizes are always written as JPEG; originals keep their format.
    return content_type_for(photo.format) if variant == "original" else "image/jpeg"
