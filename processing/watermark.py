"""Drawing an event's watermark on a picture.

The watermark is a PNG logo or a line of text, scaled to a fraction of the
picture's width, placed in a corner or the centre, and blended at the event's
opacity. Text is white with a dark outline so that it reads on any background.
Only renditions are marked (the web size and the full-size copy guests
download); originals and thumbnails are never changed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO

from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont

from gallery.models import Event, WatermarkPosition
from processing.images import InvalidImage, inspect_image

# Space between the mark and the picture's edges, as a fraction of the shorter side.
MARGIN = 0.03
# The font size a text mark is first drawn at, before it is scaled to its width.
TEXT_DRAW_SIZE = 96


@dataclass(frozen=True)
class Watermark:
    """What to draw: a logo (PNG bytes) or text, where, how wide and how opaque."""

    text: str
    logo: bytes | None
    position: str
    opacity: float
    size: float


def event_watermark(event: Event) -> Watermark | None:
    """The event's watermark, with its logo read from storage; None when the event has none."""
    if not event.has_watermark:
        return None
    logo = None
    if event.watermark_logo:
        with event.watermark_logo.open("rb") as stored:
            logo = stored.read()
    return Watermark(
        text=event.watermark_text.strip(),
        logo=logo,
        position=event.watermark_position,
        opacity=min(1.0, max(0.0, event.watermark_opacity)),
        size=min(1.0, max(0.01, event.watermark_size)),
    )


def apply_watermark(image: Image.Image, mark: Watermark | None) -> Image.Image:
    """A copy of `image` (RGB) with `mark` drawn on it; `image` itself when `mark` is None."""
    if mark is None:
        return image
    base = image.convert("RGBA")
    stamp = _stamp(mark, base.size)
    if mark.opacity < 1.0:
        alpha = stamp.getchannel("A").point(lambda value: round(value * mark.opacity))
        stamp.putalpha(alpha)
    base.alpha_composite(stamp, _placement(mark.position, base.size, stamp.size))
    return base.convert("RGB")


def _stamp(mark: Watermark, picture: tuple[int, int]) -> Image.Image:
    """The mark as an RGBA image at its final size (never larger than the picture)."""
    source = _logo(mark.logo) if mark.logo else _text(mark.text)
    width = max(1, round(picture[0] * mark.size))
    height = max(1, round(source.height * width / source.width))
    # A tall logo on a wide picture would not fit: the height bounds it too.
    if height > picture[1]:
        width, height = max(1, round(width * picture[1] / height)), picture[1]
    return source.resize((width, height), Image.Resampling.LANCZOS)


def _logo(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as logo:
        return logo.convert("RGBA")


def _text(text: str) -> Image.Image:
    font = ImageFont.load_default(size=TEXT_DRAW_SIZE)
    stroke = max(1, TEXT_DRAW_SIZE // 16)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    size = (max(1, round(right - left)), max(1, round(bottom - top)))
    canvas = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text(
        (-left, -top), text, font=font, fill=(255, 255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0, 255)
    )
    return canvas


def _placement(position: str, picture: tuple[int, int], stamp: tuple[int, int]) -> tuple[int, int]:
    margin = round(min(picture) * MARGIN)
    right = max(0, picture[0] - stamp[0] - margin)
    bottom = max(0, picture[1] - stamp[1] - margin)
    left, top = min(margin, right), min(margin, bottom)
    corners: dict[str, tuple[int, int]] = {
        WatermarkPosition.TOP_LEFT: (left, top),
        WatermarkPosition.TOP_RIGHT: (right, top),
        WatermarkPosition.BOTTOM_LEFT: (left, bottom),
        WatermarkPosition.CENTER: ((picture[0] - stamp[0]) // 2, (picture[1] - stamp[1]) // 2),
    }
    return corners.get(position, (right, bottom))


def check_logo(fileobj: IO[bytes]) -> None:
    """Refuse, with `InvalidImage` and a message for the client, anything but a whole PNG within the pixel limit."""
    info = inspect_image(fileobj)
    if info.format != "PNG":
        raise InvalidImage(_("The logo must be a PNG image (it may be transparent)."))
