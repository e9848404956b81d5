"""Which face of a selfie is the attendee's (processing.backends.local.selfie_face)."""

from processing.backends.base import DetectedFace
from processing.backends.local import selfie_face


def test_of_two_faces_of_the_same_size_the_central_one_is_the_selfie() -> None:
    friend = DetectedFace(left=139, top=92, width=108, height=107)
    owner = DetectedFace(left=79, top=80, width=108, height=107)

    assert selfie_face([friend, owner], 250, 250) == owner


def test_a_clearly_larger_face_wins_over_a_central_one() -> None:
    owner = DetectedFace(left=0, top=0, width=200, height=200)
    background = DetectedFace(left=280, top=280, width=40, height=40)

    assert selfie_face([background, owner], 600, 600) == owner
