"""Ground truth and scores for face matching on a labelled folder.

The folder has the layout of shared/faces: `people/<identity>/<n>.(jpg|png)`,
`groups/*.jpg` and a `manifest.json` whose group entries list the identities
present. One image per identity is the selfie; every other image is an event
photo, and the truth says who is in each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Dataset:
    root: Path
    selfies: dict[str, Path]
    event_photos: list[Path]
    truth: dict[str, set[str]] = field(default_factory=dict)  # identity -> event photo names
    # (identity, photo name) -> face width at analysis size, where the manifest says (composites)
    face_sizes: dict[tuple[str, str], int] = field(default_factory=dict)


def load_dataset(root: Path, selfie_index: int = 0) -> Dataset:
    """Read the manifest; the `selfie_index`-th image (sorted) of each identity is its selfie."""
    entries = json.loads((root / "manifest.json").read_text())
    people: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    face_sizes: dict[tuple[str, str], int] = {}
    for entry in entries:
        kind = entry.get("kind")
        if kind == "person":
            people.setdefault(entry["identity"], []).append(entry["file"])
        elif kind == "group":
            groups[entry["file"]] = list(entry.get("identities") or [])
            for placed in entry.get("placed") or []:
                if len(placed) >= 6:
                    face_sizes[(placed[0], entry["file"])] = int(placed[5])
        else:
            others.append(entry["file"])
    selfies: dict[str, Path] = {}
    truth: dict[str, set[str]] = {identity: set() for identity in people}
    event_files: list[str] = []
    for identity, files in sorted(people.items()):
        files = sorted(files)
        chosen = files[selfie_index % len(files)]
        selfies[identity] = root / chosen
        for name in files:
            if name != chosen:
                event_files.append(name)
                truth[identity].add(name)
    for name, identities in sorted(groups.items()):
        event_files.append(name)
        for identity in identities:
            truth.setdefault(identity, set()).add(name)
    event_files.extend(sorted(others))
    return Dataset(
        root=root, selfies=selfies, event_photos=[root / f for f in event_files], truth=truth, face_sizes=face_sizes
    )


@dataclass
class Scores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    false_negatives: int


def score(tp: int, fp: int, fn: int) -> Scores:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(round(precision, 4), round(recall, 4), round(f1, 4), tp, fp, fn)


# Faces narrower than this at analysis size need the detector's upsampled pass.
SMALL_FACE_PX = 80


def evaluate(
    truth: dict[str, set[str]], found: dict[str, set[str]], face_sizes: dict[tuple[str, str], int] | None = None
) -> dict[str, Any]:
    """Compare found photo names per identity with the truth.

    With `face_sizes`, also the recall on faces narrower than SMALL_FACE_PX
    at analysis size ("small_faces": found, total, recall).
    """
    per_identity: dict[str, Any] = {}
    misses: list[tuple[str, str]] = []
    false_matches: list[tuple[str, str]] = []
    totals = [0, 0, 0]
    for identity in sorted(truth):
        expected, got = truth[identity], found.get(identity, set())
        tp, fp, fn = len(expected & got), len(got - expected), len(expected - got)
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        per_identity[identity] = score(tp, fp, fn).__dict__
        misses += [(identity, name) for name in sorted(expected - got)]
        false_matches += [(identity, name) for name in sorted(got - expected)]
    small = [(i, n) for (i, n), px in (face_sizes or {}).items() if px < SMALL_FACE_PX and n in truth.get(i, ())]
    small_found = sum(1 for i, n in small if n in found.get(i, set()))
    return {
        "overall": score(*totals).__dict__,
        "small_faces": {
            "found": small_found,
            "total": len(small),
            "recall": round(small_found / len(small), 4) if small else None,
        },
        "per_identity": per_identity,
        "misses": misses,
        "false_matches": false_matches,
    }
