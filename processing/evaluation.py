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


def load_dataset(root: Path, selfie_index: int = 0) -> Dataset:
    """Read the manifest; the `selfie_index`-th image (sorted) of each identity is its selfie."""
    entries = json.loads((root / "manifest.json").read_text())
    people: dict[str, list[str]] = {}
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for entry in entries:
        kind = entry.get("kind")
        if kind == "person":
            people.setdefault(entry["identity"], []).append(entry["file"])
        elif kind == "group":
            groups[entry["file"]] = list(entry.get("identities") or [])
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
    return Dataset(root=root, selfies=selfies, event_photos=[root / f for f in event_files], truth=truth)


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


def evaluate(truth: dict[str, set[str]], found: dict[str, set[str]]) -> dict[str, Any]:
    """Compare found photo names per identity with the truth."""
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
    return {
        "overall": score(*totals).__dict__,
        "per_identity": per_identity,
        "misses": misses,
        "false_matches": false_matches,
    }
