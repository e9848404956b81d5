"""bench/review_answers.py: a guest's truthful answers to "Is this you?" replayed on a known event."""

from __future__ import annotations

import numpy as np

from bench.review_answers import replay_answers
from bench.tune_matching import DumpedEvent
from tests.correction_scenes import SCENE, SELFIE

NAMES = ["a1.png", "a2.png", "a3.png", "x1.png", "x2.png", "x3.png"]


def scene_event() -> tuple[DumpedEvent, dict[int, str]]:
    """The corrections scene as a dump: the guest's three photos and their look-alike's three."""
    vectors = np.stack([SCENE[name][0] for name in NAMES])
    ids = np.arange(1, len(NAMES) + 1)
    event = DumpedEvent(
        face_ids=ids,
        photo_ids=ids,
        vectors=vectors,
        qualities=np.ones(len(NAMES)),
        selfies={"guest": SELFIE[None]},
        photo_names={int(i): name for i, name in zip(ids, NAMES, strict=True)},
        truth={"guest": {"a1.png", "a2.png", "a3.png"}},
    )
    whose = {int(i): ("guest" if name.startswith("a") else "look-alike") for i, name in zip(ids, NAMES, strict=True)}
    return event, whose


def test_one_not_me_on_the_look_alike_clears_all_his_photos() -> None:
    event, whose = scene_event()
    # The look-alike is 0.38 from the selfie: asked about from 0.3, not from 0.45.
    assert replay_answers(event, whose, 0, 0.3) == (3, 3, 0, 0, 0)
    assert replay_answers(event, whose, 1, 0.3) == (3, 0, 0, 0, 1)
    assert replay_answers(event, whose, 1, 0.45) == (3, 3, 0, 0, 0)
