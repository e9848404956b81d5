"""Replay the event-wide matching on dumped events, over a grid of thresholds.

Detection is the slow part of an evaluation; matching is a pure function of
the faces and selfies (processing.matching.match_event). So an event is
processed once, with its faces dumped:

    python -m bench.composite_event /tmp/tune-a --split tuning --seed 3
    DATA_DIR=/tmp/tune-data .venv/bin/python manage.py evaluate_matching /tmp/tune-a --live --dump /tmp/tune-a.npz

and the thresholds are then scored on one or more dumps in seconds:

    .venv/bin/python bench/tune_matching.py /tmp/tune-a.npz /tmp/tune-b.npz [--single 0.56,0.58,0.60] [--group ...]

Each option takes a comma-separated list (default: the current setting);
every combination is scored and the table is sorted by F1 among the
combinations that reach --precision (default 0.98). Each row also gives the
replay's time over all the events (the fastest of --repeat runs) and its ratio
to the grid's first combination, measured in the same run: `--cohort 0,30`
compares raw distances with distances read against the neighbourhood. With
`--arrivals`, what is scored is the answer each photo got as it arrived
(`match_arrivals`), what a guest sees before the event-wide pass settles it.
Tune on composites of the
tuning split only; the held-out split is scored once, with the final settings,
by evaluate_matching itself.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import out, ratio


@dataclass(frozen=True)
class DumpedEvent:
    """An event as `evaluate_matching --dump` wrote it."""

    face_ids: np.ndarray
    photo_ids: np.ndarray
    vectors: np.ndarray
    qualities: np.ndarray
    selfies: dict[str, np.ndarray]
    photo_names: dict[int, str]
    truth: dict[str, set[str]]
    # Each face's box (left, top, width, height as fractions of its photo); older dumps have none.
    boxes: np.ndarray | None = None


def load(path: Path) -> DumpedEvent:
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    return DumpedEvent(
        face_ids=data["face_ids"],
        photo_ids=data["photo_ids"],
        vectors=data["vectors"],
        qualities=data["qualities"],
        selfies={key.removeprefix("selfie:"): data[key] for key in data.files if key.startswith("selfie:")},
        photo_names={int(pk): name for pk, name in meta["photo_names"].items()},
        truth={identity: set(photos) for identity, photos in meta["truth"].items()},
        boxes=data["boxes"] if "boxes" in data.files else None,
    )


def replay(event: DumpedEvent, thresholds: object) -> dict[str, set[int]]:
    """The face ids the matching gives each attendee (by identity) with `thresholds`."""
    from processing import matching

    identities = sorted(event.selfies)
    users = {identity: number for number, identity in enumerate(identities, start=1)}
    found = matching.match_event(
        event.face_ids,
        event.vectors,
        event.photo_ids,
        {users[i]: event.selfies[i] for i in identities},
        thresholds,  # type: ignore[arg-type]
        face_qualities=event.qualities,
    )
    return {identity: set(found[users[identity]]) for identity in identities}


def replay_arrivals(event: DumpedEvent, thresholds: object) -> dict[str, set[int]]:
    """The face ids each attendee was given as the photos arrived, before any event-wide pass.

    Photos arrive in id order, and each one's faces are decided by
    `match_arrivals` against each attendee's selfie and the faces given to
    them so far, as the local backend decides them.
    """
    from processing import matching

    identities = sorted(event.selfies)
    matched: dict[str, list[int]] = {identity: [] for identity in identities}
    starts = np.flatnonzero(np.r_[True, event.photo_ids[1:] != event.photo_ids[:-1]])
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(event.face_ids)], strict=True):
        groups = {
            number: np.concatenate([event.selfies[identity], event.vectors[matched[identity]]])
            for number, identity in enumerate(identities)
        }
        found = matching.match_arrivals(
            np.arange(start, end),
            event.vectors[start:end],
            groups,
            thresholds,  # type: ignore[arg-type]
            event.qualities[start:end],
        )
        for number, faces in found.items():
            matched[identities[number]].extend(faces)
    return {identity: {int(event.face_ids[k]) for k in rows} for identity, rows in matched.items()}


def counts(
    event: DumpedEvent, thresholds: object, weak: float, unusable: float, arrivals: bool = False
) -> tuple[int, int, int]:
    """True positives, false positives and false negatives (photos per attendee) of one replay."""
    from processing import matching

    matching.WEAK_QUALITY, matching.UNUSABLE_QUALITY = weak, unusable
    found = replay_arrivals(event, thresholds) if arrivals else replay(event, thresholds)
    photo_of = dict(zip(event.face_ids.tolist(), event.photo_ids.tolist(), strict=True))
    tp = fp = fn = 0
    for identity, faces in found.items():
        mine = {event.photo_names[photo_of[face]] for face in faces}
        truth = event.truth.get(identity, set())
        tp += len(mine & truth)
        fp += len(mine - truth)
        fn += len(truth - mine)
    return tp, fp, fn


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
    import django

    django.setup()
    from processing import matching
    from processing.backends.local import match_thresholds

    current = match_thresholds()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", nargs="+", type=Path)
    for name in (f.name for f in fields(current)):
        parser.add_argument(f"--{name.replace('_', '-')}", default=str(getattr(current, name)))
    parser.add_argument("--weak-quality", default=str(matching.WEAK_QUALITY))
    parser.add_argument("--unusable-quality", default=str(matching.UNUSABLE_QUALITY))
    parser.add_argument("--precision", type=float, default=0.98, help="precision a row must reach to rank first")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=1, help="replays per combination for its time (default 1)")
    parser.add_argument(
        "--arrivals",
        action="store_true",
        help="score each photo's immediate answer as it arrives (match_arrivals), before the event-wide pass",
    )
    args = parser.parse_args()

    events = [load(path) for path in args.dumps]
    names = [f.name for f in fields(current)]
    grid = {name: [float(v) for v in getattr(args, name).split(",")] for name in names}
    weak_values = [float(v) for v in args.weak_quality.split(",")]
    unusable_values = [float(v) for v in args.unusable_quality.split(",")]
    rows = []
    timings: list[float] = []
    for values in itertools.product(*grid.values(), weak_values, unusable_values):
        thresholds = replace(current, **dict(zip(names, values[: len(names)], strict=True)))
        weak, unusable = values[len(names) :]
        seconds = []
        for _ in range(max(args.repeat, 1)):
            tp = fp = fn = 0
            started = time.perf_counter()
            for event in events:
                a, b, c = counts(event, thresholds, weak, unusable, args.arrivals)
                tp, fp, fn = tp + a, fp + b, fn + c
            seconds.append(time.perf_counter() - started)
        timings.append(min(seconds))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision >= args.precision, f1, precision, recall, tp, fp, fn, values, timings[-1]))
    rows.sort(key=lambda row: (row[0], row[1]), reverse=True)
    header = [*names, "weak_quality", "unusable_quality"]
    out(f"{len(events)} events, {len(rows)} combinations; current: {current}")
    out("precision recall  tp  fp  fn  seconds ratio  " + " ".join(header))
    for _, _, precision, recall, tp, fp, fn, values, spent in rows[: args.top]:
        out(
            f"{precision:9.4f} {recall:6.4f} {tp:3d} {fp:3d} {fn:3d}  {spent:7.2f} {ratio(spent, timings[0]):>5s}  "
            + " ".join(f"{v:g}" for v in values)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
