"""The image formats photoevent accepts: one table for uploads, storage names and serving.

Kept free of Django imports so that every layer can use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageFormat:
    """An accepted image format, as Pillow names it."""

    name: str
    extension: str
    content_type: str


ACCEPTED_FORMATS: dict[str, ImageFormat] = {
    fmt.name: fmt
    for fmt in (
        ImageFormat("JPEG", ".jpg", "image/jpeg"),
        ImageFormat("PNG", ".png", "image/png"),
        ImageFormat("WEBP", ".webp", "image/webp"),
    )
}


def extension_for(format_name: str) -> str:
    """The file extension stored originals of `format_name` get ("" if unknown)."""
    fmt = ACCEPTED_FORMATS.get(format_name)
    return fmt.extension if fmt else ""


def content_type_for(format_name: str) -> str:
    """The Content-Type an original of `format_name` is served with."""
    fmt = ACCEPTED_FORMATS.get(format_name)
    return fmt.content_type if fmt else "application/octet-stream"
