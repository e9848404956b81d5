"""HEIC files made from synthetic images, as iPhones send them."""

from __future__ import annotations

import io

import pillow_heif
from PIL import Image


def heic_bytes(image: Image.Image | bytes, quality: int = -1) -> bytes:
    """`image` (a Pillow image or encoded image bytes) as a HEIC file; lossless by default (quality -1).

    Lossless keeps RGB as it is (no chroma subsampling, identity matrix), so
    the marker face backend still finds the scene's faces.
    """
    if isinstance(image, bytes):
        image = Image.open(io.BytesIO(image))
    heif = pillow_heif.from_pillow(image.convert("RGB"))
    buffer = io.BytesIO()
    lossless = {"chroma": 444, "matrix_coefficients": 0} if quality == -1 else {}
    heif.save(buffer, quality=quality, **lossless)
    return buffer.getvalue()
