"""Marker people: solid squares of fixed colours that the fake face backend reads as faces.

No Django here, so that benchmarks can make marker photos before Django is set up.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

# One colour per person; the index of the colour is the person.
MARKERS = [
    (220, 20, 60),
    (30, 144, 255),
    (50, 205, 50),
    (255, 140, 0),
    (148, 0, 211),
    (0, 206, 209),
    (255, 20, 147),
    (139, 69, 19),
]
# The FACE_BACKEND value that selects the marker backend in a server or a queue process.
FAKE_BACKEND = "testsupport.fakes.FakeBackend"


def scene_png(people: list[int], size: tuple[int, int] = (640, 480), seed: int = 0, face: int = 60) -> bytes:
    """A PNG with a marker square for each person index in `people`."""
    image = Image.new("RGB", size, (128 + seed % 64, 128, 128))
    draw = ImageDraw.Draw(image)
    for slot, person in enumerate(people):
        left = 20 + slot * (face + 20)
        draw.rectangle([left, 40, left + face - 1, 40 + face - 1], fill=MARKERS[person])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
