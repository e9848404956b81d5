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
    # How people call it, when that differs from Pillow's name.
    label: str = ""
    # Other file extensions and types clients use for it (file pickers' `accept`).
    aliases: tuple[str, ...] = ()


ACCEPTED_FORMATS: dict[str, ImageFormat] = {
    fmt.name: fmt
    for fmt in (
        ImageFormat("JPEG", ".jpg", "image/jpeg", aliases=(".jpeg",)),
        ImageFormat("PNG", ".png", "image/png"),
        ImageFormat("WEBP", ".webp", "image/webp", label="WebP"),
        # iPhone photos; decoded through pillow-heif (processing/images.py), the
        # renditions made from them are JPEG like all renditions.
        ImageFormat("HEIF", ".heic", "image/heic", label="HEIC", aliases=(".heif", "image/heif")),
    )
}


def accepted_names() -> str:
    """The accepted formats as people call them, for messages: "JPEG, PNG, WebP, HEIC"."""
    return ", ".join(fmt.label or fmt.name for fmt in ACCEPTED_FORMATS.values())


def accept_attribute() -> str:
    """The value of a file input's `accept` attribute that lets pickers offer every accepted format."""
    return ",".join(
        item for fmt in ACCEPTED_FORMATS.values() for item in (fmt.content_type, fmt.extension, *fmt.aliases)
    )


def extension_for(format_name: str) -> str:
    """The file extension stored originals of `format_name` get ("" if unknown)."""
    fmt = ACCEPTED_FORMATS.get(format_name)
    return fmt.extension if fmt else ""


def content_type_for(format_name: str) -> str:
    """The Content-Type an original of `format_name` is served with."""
    fmt = ACCEPTED_FORMATS.get(format_name)
    return fmt.content_type if fmt else "application/octet-stream"
