"""bench/review_answers.py: a guest's truthful answers to "Is this you?" replayed on a known event."""

from __future__ import annotations

import numpy as np

from bench.review_answers import replay_answers
from bench.tune_matching import DumpedEvent
from tests.correction_scenes import SCENE, SELFIE, unit

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


def test_one_yes_on_a_missed_face_brings_the_rest_of_its_group() -> None:
    # The guest's photos in other light: two faces 0.58 from the selfie, 0.21 apart.
    own = [SCENE[name][0] for name in NAMES[:3]]
    apart = [SELFIE + unit(2, 0.56) + unit(50 + k, 0.15) for k in range(2)]
    ids = np.arange(1, 6)
    names = {1: "a1", 2: "a2", 3: "a3", 4: "b1", 5: "b2"}
    event = DumpedEvent(
        face_ids=ids,
        photo_ids=ids,
        vectors=np.stack(own + apart),
        qualities=np.ones(5),
        selfies={"guest": SELFIE[None]},
        photo_names=names,
        truth={"guest": set(names.values())},
    )
    whose = {int(i): "guest" for i in ids}
    assert replay_answers(event, whose, 1, 0.45) == (3, 0, 2, 0, 0)
    assert replay_answers(event, whose, 1, 0.45, missed=0.55) == (3, 0, 2, 0, 0)
    assert replay_answers(event, whose, 1, 0.45, missed=0.6) == (5, 0, 0, 1, 0)
