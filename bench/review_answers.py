"""What a guest's answers to "Is this you?" do to the matching, replayed on dumped composite events.

My photos asks each guest about their matches furthest from their selfies
(`processing.corrections.faces_to_review`: at least FACE_REVIEW_DISTANCE from
every selfie, most doubtful first). This replays that on events dumped by
`evaluate_matching --dump` from composites (bench/composite_event.py), whose
placements say whose face every detected face is (bench/match_errors.py): in
each round every guest answers the first question left, truthfully ("that's
me" on their own face, "not me" on anyone else's), and the matching runs again
with all the answers so far as constraints, as it does after each answer:

    python -m bench.composite_event /tmp/tune-a --split tuning --seed 3
    DATA_DIR=/tmp/tune-data .venv/bin/python manage.py evaluate_matching /tmp/tune-a --live --dump /tmp/tune-a.npz
    .venv/bin/python bench/review_answers.py /tmp/tune-a --answers 0,1,2,3 [--missed setting,0.6]

Each folder is given with its dump beside it (FOLDER.npz). It prints, per
number of answers per guest, the photos found, false matches and misses over
all the events, and how many questions were answered "that's me" and "not me".
With `--missed`, guests who see every photo are also asked about faces matched
to nobody near their selfie, once no doubtful match is left.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import out
from bench.match_errors import face_identities
from bench.tune_matching import DumpedEvent, load


def replay_answers(
    event: DumpedEvent, whose: dict[int, str], answers: int, distance: float, missed: float | None = None
) -> tuple[int, ...]:
    """(tp, fp, fn, yes, no) after each guest answered up to `answers` questions.

    With `missed`, a guest without a doubtful match left is asked about the
    nearest face matched to nobody within `missed` of their selfie, as in
    events where guests see every photo.
    """
    from processing import matching
    from processing.backends.local import match_thresholds

    identities = sorted(event.selfies)
    users = {identity: number for number, identity in enumerate(identities, start=1)}
    references = {users[i]: event.selfies[i] for i in identities}
    row = {face: k for k, face in enumerate(event.face_ids.tolist())}
    confirmed: dict[int, set[int]] = {}
    rejected: dict[int, set[int]] = {}

    def run() -> dict[int, dict[int, float]]:
        constraints = matching.MatchConstraints(confirmed=confirmed, rejected=rejected)
        return matching.match_event(
            event.face_ids,
            event.vectors,
            event.photo_ids,
            references,
            match_thresholds(),
            face_qualities=event.qualities,
            constraints=constraints,
        )

    photo_of = dict(zip(event.face_ids.tolist(), event.photo_ids.tolist(), strict=True))
    found = run()
    yes = no = 0
    for _ in range(answers):
        taken = {face for faces in found.values() for face in faces}
        for identity in identities:
            user = users[identity]
            answered = confirmed.get(user, set()) | rejected.get(user, set())
            answered_photos = {photo_of[face] for face in answered}
            selfies = event.selfies[identity].reshape(-1, matching.DESCRIPTOR_SIZE)
            gaps = np.linalg.norm(event.vectors[:, None, :] - selfies[None, :, :], axis=2).min(1)
            doubtful = sorted(
                (-float(gaps[row[face]]), face)
                for face in found[user]
                if photo_of[face] not in answered_photos and gaps[row[face]] >= distance
            )
            if not doubtful and missed is not None:
                mine = {photo_of[face] for face in found[user]} | answered_photos
                refused = event.vectors[[row[face] for face in sorted(rejected.get(user, ()))]]
                for k, face in enumerate(event.face_ids.tolist()):
                    if face in taken or photo_of[face] in mine or event.qualities[k] < matching.WEAK_QUALITY:
                        continue
                    if gaps[k] > missed or (
                        len(refused) and np.linalg.norm(refused - event.vectors[k], axis=1).min() < gaps[k]
                    ):
                        continue
                    doubtful.append((float(gaps[k]), face))
                doubtful.sort()
            if not doubtful:
                continue
            face = doubtful[0][1]
            if whose.get(face) == identity:
                confirmed.setdefault(user, set()).add(face)
                yes += 1
            else:
                rejected.setdefault(user, set()).add(face)
                no += 1
        found = run()
    tp = fp = fn = 0
    for identity in identities:
        mine = {event.photo_names[photo_of[face]] for face in found[users[identity]]}
        truth = event.truth.get(identity, set())
        tp, fp, fn = tp + len(mine & truth), fp + len(mine - truth), fn + len(truth - mine)
    return tp, fp, fn, yes, no


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
    import django

    django.setup()
    from django.conf import settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="composite folders, each with FOLDER.npz beside it")
    parser.add_argument("--answers", default="0,1,2,3", help="answers per guest to replay (comma-separated)")
    parser.add_argument(
        "--missed",
        default="",
        help="also ask about faces matched to nobody within these distances of the selfie (comma-separated; "
        "'setting' for FACE_REVIEW_MISSED_DISTANCE); by default only doubtful matches are asked about",
    )
    args = parser.parse_args()
    rounds = [int(value) for value in args.answers.split(",")]
    events = []
    for folder in args.folders:
        event = load(folder.with_suffix(".npz"))
        if event.boxes is None:
            parser.error(f"{folder}.npz has no face boxes: dump it again with evaluate_matching --dump")
        events.append((event, face_identities(event, folder)[0]))
    distance = settings.FACE_REVIEW_DISTANCE
    reaches: list[float | None] = [
        settings.FACE_REVIEW_MISSED_DISTANCE if value == "setting" else float(value)
        for value in args.missed.split(",")
        if value
    ] or [None]
    out(f"{len(events)} events; questions about matches at least {distance} from the selfie")
    header = f"{'missed':>7} {'answers':>8} {'found':>6} {'false':>6} {'misses':>6} {'precision':>9} {'recall':>7}"
    out(f"{header} {'yes':>5} {'no':>5}")
    for reach in reaches:
        for answers in rounds:
            replays = [replay_answers(event, whose, answers, distance, reach) for event, whose in events]
            tp, fp, fn, yes, no = (int(value) for value in np.sum(replays, axis=0))
            precision = tp / (tp + fp) if tp + fp else 1.0
            recall = tp / (tp + fn) if tp + fn else 1.0
            label = "-" if reach is None else f"{reach:.2f}"
            out(f"{label:>7} {answers:>8} {tp:>6} {fp:>6} {fn:>6} {precision:>9.3f} {recall:>7.3f} {yes:>5} {no:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
