"""bench/tune_matching.py --arrivals: each photo is decided as it arrives, against the faces given so far."""

from __future__ import annotations

import numpy as np

from bench.tune_matching import DumpedEvent, counts
from processing.matching import DESCRIPTOR_SIZE, MatchThresholds


def axis(index: int, length: float) -> np.ndarray:
    vector = np.zeros(DESCRIPTOR_SIZE, np.float32)
    vector[index] = length
    return vector


def event() -> DumpedEvent:
    """Photo 1: the guest 0.55 from her selfie, then photo 2: a stranger 0.55 from it and far from her."""
    guest, stranger = axis(1, 0.55), axis(2, 0.55)
    return DumpedEvent(
        face_ids=np.array([10, 11]),
        photo_ids=np.array([1, 2]),
        vectors=np.stack([guest, stranger]),
        qualities=np.ones(2),
        selfies={"ann": axis(0, 0.0)[None]},
        photo_names={1: "one.jpg", 2: "two.jpg"},
        truth={"ann": {"one.jpg"}},
    )


def test_the_immediate_answer_is_scored_photo_by_photo() -> None:
    # At the event-wide bar the guest's face joins at once. The stranger is as
    # near the selfie, but by photo 2 her group holds her face too, 0.78 from
    # his: 0.66 on average, over the bar, so he does not join.
    loose = MatchThresholds(live=0.59)
    assert counts(event(), loose, 0.5, 0.15, arrivals=True) == (1, 0, 0)
    # At the live bar neither joins at once; the event-wide pass takes her face.
    assert counts(event(), MatchThresholds(), 0.5, 0.15, arrivals=True) == (0, 0, 1)
    assert counts(event(), MatchThresholds(), 0.5, 0.15) == (1, 0, 0)
