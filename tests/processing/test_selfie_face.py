"""Which face of a selfie is the attendee's, and whether it will do (processing.backends.local)."""

from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from gallery.models import Selfie
from processing.backends.base import DetectedFace, NoFaceError, UnusableSelfie
from processing.backends.local import LocalBackend, selfie_face


def test_of_two_faces_of_the_same_size_the_central_one_is_the_selfie() -> None:
    friend = DetectedFace(left=139, top=92, width=108, height=107)
    owner = DetectedFace(left=79, top=80, width=108, height=107)

    assert selfie_face([friend, owner], 250, 250) == owner


def test_a_clearly_larger_face_wins_over_a_central_one() -> None:
    owner = DetectedFace(left=0, top=0, width=200, height=200)
    background = DetectedFace(left=280, top=280, width=40, height=40)

    assert selfie_face([background, owner], 600, 600) == owner


def portrait(faces_dir: Path) -> Image.Image:
    return Image.open(faces_dir / "people" / "barack_obama" / "1.jpg").convert("RGB")


@pytest.mark.django_db
def test_a_sharp_selfie_is_enrolled(faces_dir: Path) -> None:
    image = portrait(faces_dir)
    image.thumbnail((1024, 1024))

    face, _ = LocalBackend().enrol_selfie(Selfie(), image)

    assert face.width >= 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("shrink", "blur", "advice"),
    [(0.24, 0.0, "closer"), (1.0, 20.0, "blurry")],
)
def test_a_selfie_too_small_or_blurry_is_refused_with_advice(
    faces_dir: Path, shrink: float, blur: float, advice: str
) -> None:
    image = portrait(faces_dir)
    image.thumbnail((1024, 1024))
    image = image.resize((round(image.width * shrink), round(image.height * shrink)))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))

    with pytest.raises(UnusableSelfie, match=advice) as raised:
        LocalBackend().enrol_selfie(Selfie(), image)

    assert isinstance(raised.value, NoFaceError)
