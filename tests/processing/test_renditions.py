"""The JPEG copies processing writes: their size, and what they show."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from processing.images import fitted_size, jpeg_bytes


def halves(width: int, height: int) -> Image.Image:
    """Red on the left half, blue on the right: a shift or a smear shows at the edge."""
    image = Image.new("RGB", (width, height), (200, 0, 0))
    image.paste((0, 0, 200), (width // 2, 0, width, height))
    return image


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    red, green, blue = image.getpixel((x, y))  # type: ignore[misc]
    return red, green, blue


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


@pytest.mark.parametrize(
    ("width", "height", "max_side"),
    [
        (1600, 1142, 400),  # a whole factor on both axes
        (1366, 768, 400),  # a whole factor, then a remainder
        (1126, 661, 400),  # factor 2 and a remainder
        (700, 1601, 400),  # portrait, odd sizes
        (500, 300, 400),  # under 2x: the remainder only
        (1600, 1100, 1600),  # already fits
    ],
)
def test_a_copy_has_the_fitted_size(width: int, height: int, max_side: int) -> None:
    copy = decoded(jpeg_bytes(halves(width, height), max_side, 80))
    assert copy.size == fitted_size(width, height, max_side)


def test_a_reduced_copy_shows_the_same_picture() -> None:
    copy = decoded(jpeg_bytes(halves(1366, 768), 400, 90))
    width, height = copy.size
    red, blue = pixel(copy, width // 4, height // 2), pixel(copy, 3 * width // 4, height // 2)
    assert red[0] > 150 and red[2] < 50, red
    assert blue[2] > 150 and blue[0] < 50, blue
    # The edge stays in the middle: a copy shifted by the reduction would move it.
    edge = [x for x in range(width - 1) if pixel(copy, x, height // 2)[0] > pixel(copy, x, height // 2)[2]]
    assert abs(max(edge) - width // 2) <= 2


def test_the_source_image_is_left_as_it_was() -> None:
    image = halves(1600, 1100)
    jpeg_bytes(image, 400, 80)
    jpeg_bytes(image, 1600, 85, optimize=False)
    assert image.size == (1600, 1100)
    assert image.getpixel((0, 0)) == (200, 0, 0)
