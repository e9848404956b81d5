"""Drawing the watermark: where it goes, how opaque, and nothing outside it."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops

from gallery.models import WatermarkPosition
from processing.watermark import Watermark, apply_watermark

GREY = (100, 100, 100)


def _marked_box(position: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    picture = Image.new("RGB", (800, 600), GREY)
    marked = apply_watermark(picture, Watermark("Photo", None, position, opacity, 0.25))
    box = ImageChops.difference(marked, picture).getbbox()
    assert box is not None
    return box


@pytest.mark.parametrize(
    ("position", "inside"),
    [
        (WatermarkPosition.TOP_LEFT, lambda b: b[0] < 40 and b[1] < 40),
        (WatermarkPosition.TOP_RIGHT, lambda b: b[2] > 760 and b[1] < 40),
        (WatermarkPosition.BOTTOM_LEFT, lambda b: b[0] < 40 and b[3] > 560),
        (WatermarkPosition.BOTTOM_RIGHT, lambda b: b[2] > 760 and b[3] > 560),
        (WatermarkPosition.CENTER, lambda b: b[0] > 250 and b[2] < 550 and b[1] > 200 and b[3] < 400),
    ],
)
def test_the_mark_is_where_it_was_asked_and_a_quarter_of_the_width(position, inside):
    box = _marked_box(position)
    assert inside(box), box
    assert 170 <= box[2] - box[0] <= 200


def test_opacity_blends_the_mark():
    picture = Image.new("RGB", (400, 300), GREY)
    logo = Image.new("RGBA", (100, 50), (255, 255, 255, 255))
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    opaque = apply_watermark(picture, Watermark("", buffer.getvalue(), "center", 1.0, 0.5))
    faint = apply_watermark(picture, Watermark("", buffer.getvalue(), "center", 0.5, 0.5))
    assert opaque.getpixel((200, 150)) == (255, 255, 255)
    assert faint.getpixel((200, 150)) == pytest.approx((178, 178, 178), abs=2)
    assert apply_watermark(picture, None) is picture
