"""Thumbnails cropped around one face, for the guest's "my photos".

A photo's square thumbnail is centred on the photo, so in a group photo the
guest is often outside the thumbnail that says it is "of you". My photos shows
instead a square cut around the guest's own face, from the stored face box.

Made at serving time, not with the renditions, and kept in the cache:

- only matched faces ever need one, while a group photo has many faces: making
  one per face at processing time would cost a crop per face of every photo for
  the few faces guests look at;
- re-processing replaces a photo's faces (new ids), and photos, events and
  accounts are deleted by many paths, cascades included: a cache entry keyed on
  the photo's job and the face id needs no deletion path, can never be served
  for the wrong face, and its time-to-live bounds the space;
- a miss costs one decode of the web-size copy (a few tens of milliseconds),
  and the browser keeps the answer (`Cache-Control: private`).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from PIL import Image

from processing.images import open_upright

if TYPE_CHECKING:
    from gallery.models import Face, Photo

# The face's larger side takes this share of the square, leaving room for the
# head and shoulders around it.
FACE_SHARE = 0.4
# A tiny face is shown with at least this share of the photo's shorter side around it.
MIN_SIDE_SHARE = 0.2
# The square sits a little below the face's centre: shoulders say more than the ceiling.
DOWN_SHIFT = 0.1
CROP_TTL_S = 7 * 24 * 3600
CROP_QUALITY = 82


def crop_box(width: int, height: int, face: Face) -> tuple[int, int, int, int]:
    """The square (left, top, right, bottom) in pixels of a `width` by `height` image to show `face` in."""
    face_w, face_h = face.width * width, face.height * height
    shorter = min(width, height)
    side = min(shorter, max(max(face_w, face_h) / FACE_SHARE, MIN_SIDE_SHARE * shorter, 1.0))
    centre_x = (face.left + face.width / 2) * width
    centre_y = (face.top + face.height / 2) * height + DOWN_SHIFT * side
    left = min(max(centre_x - side / 2, 0.0), width - side)
    top = min(max(centre_y - side / 2, 0.0), height - side)
    return round(left), round(top), round(left + side), round(top + side)


def face_thumbnail(photo: Photo, face: Face) -> bytes:
    """A square JPEG thumbnail of `photo` around `face`, from its web-size copy; cached."""
    key = f"face-crop:{photo.job_id.hex}:{face.pk}:{settings.PHOTO_THUMBNAIL_MAX_SIDE}"
    data: bytes | None = cache.get(key)
    if data is None:
        data = _crop(photo, face)
        cache.set(key, data, CROP_TTL_S)
    return data


def _crop(photo: Photo, face: Face) -> bytes:
    with photo.web.open("rb") as web:
        image = open_upright(web)
    square = image.crop(crop_box(image.width, image.height, face))
    side = settings.PHOTO_THUMBNAIL_MAX_SIDE
    if square.width > side:
        square = square.resize((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    square.save(buffer, "JPEG", quality=CROP_QUALITY, optimize=True)
    return buffer.getvalue()
