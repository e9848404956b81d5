"""Whose faces the matching got wrong on a composite event, and how close they were.

`evaluate_matching --dump` writes the faces an event's matching read, with
each face's box; a composite (bench/composite_event.py) knows where it pasted
each identity's portrait. Together they tell whose face every detected face
is, strangers included, which the per-photo truth alone does not:

    python -m bench.composite_event /tmp/tune-a --split tuning --seed 6
    DATA_DIR=/tmp/tune-data .venv/bin/python manage.py evaluate_matching /tmp/tune-a --live --dump /tmp/tune-a.npz
    .venv/bin/python bench/match_errors.py /tmp/tune-a.npz /tmp/tune-a

It replays the matching with the current settings (processing.matching, as
bench/tune_matching.py does) and prints:

- each false match: the attendee, whose face it is, its distance to the
  attendee's selfie, its quality and width at analysis size;
- each miss among the detected faces: the distance to the selfie, and who
  took the face if anyone did; faces the detector did not find are counted,
  with the size the composite placed them at, and so are all the photos
  missed;
- the median neighbourhood scale of weak and of clear faces;
- per attendee, the mean distance of their own faces to their selfie beside
  that of the identity whose faces are closest to it on average: a look-alike
  is an identity whose row comes near or under the attendee's own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.composite_event import ANALYSIS_SIDE
from bench.harness import out
from bench.tune_matching import DumpedEvent, load, replay


def face_identities(event: DumpedEvent, composite: Path) -> tuple[dict[int, str], dict[int, float]]:
    """{face id: identity} for the faces whose centre lies in a pasted portrait (the top one where they overlap).

    Also {face id: its width in pixels at analysis size}.
    """
    manifest = json.loads((composite / "manifest.json").read_text())
    placed = {entry["file"]: entry["placed"] for entry in manifest if entry["kind"] == "group"}
    sizes: dict[str, tuple[int, int]] = {}
    found: dict[int, str] = {}
    widths: dict[int, float] = {}
    assert event.boxes is not None
    for face, photo, box in zip(event.face_ids.tolist(), event.photo_ids.tolist(), event.boxes, strict=True):
        name = event.photo_names.get(photo, "")
        if name not in placed:
            continue
        if name not in sizes:
            with Image.open(composite / name) as image:
                sizes[name] = image.size
        width, height = sizes[name]
        left, top, box_width, box_height = (float(v) for v in box)
        x, y = (left + box_width / 2) * width, (top + box_height / 2) * height
        widths[face] = box_width * width * min(1.0, ANALYSIS_SIDE / max(width, height))
        # Later portraits were pasted over earlier ones.
        for identity, px, py, pw, ph, _ in reversed(placed[name]):
            if px <= x <= px + pw and py <= y <= py + ph:
                found[face] = identity
                break
    return found, widths


def neighbourhood_scales(event: DumpedEvent, thresholds: object) -> str:
    """The median neighbourhood scale of the weak and of the clear faces (processing.matching.Neighbourhoods)."""
    from processing import matching

    neighbourhoods = matching.Neighbourhoods(event.vectors, event.photo_ids, thresholds)  # type: ignore[arg-type]
    neighbourhoods.read(np.arange(len(event.face_ids)))
    scales = neighbourhoods.points[:, matching.DESCRIPTOR_SIZE]
    weak = (event.qualities < matching.WEAK_QUALITY) & (event.qualities >= matching.UNUSABLE_QUALITY)
    clear = event.qualities >= matching.WEAK_QUALITY
    medians = [
        f"{np.median(scales[mask]):.3f} ({int(mask.sum())} faces)" if mask.any() else "-" for mask in (weak, clear)
    ]
    return f"median neighbourhood scale: weak faces {medians[0]}, clear faces {medians[1]}"


def placed_sizes(composite: Path) -> dict[tuple[str, str], int]:
    """{(photo, identity): the face's width in pixels at analysis size, as the composite placed it}."""
    manifest = json.loads((composite / "manifest.json").read_text())
    return {
        (entry["file"], identity): int(face_px)
        for entry in manifest
        if entry["kind"] == "group"
        for identity, *_, face_px in entry["placed"]
    }


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
    import django

    django.setup()
    from processing.backends.local import match_thresholds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dump", type=Path)
    parser.add_argument("composite", type=Path, help="the composite folder the dumped event was made from")
    args = parser.parse_args()

    event = load(args.dump)
    if event.boxes is None:
        parser.error(f"{args.dump} has no face boxes: dump it again with evaluate_matching --dump")
    whose, widths = face_identities(event, args.composite)
    attendees = sorted(event.selfies)
    found = replay(event, match_thresholds())
    owner = {face: identity for identity in attendees for face in found[identity]}
    row = {face: k for k, face in enumerate(event.face_ids.tolist())}

    def describe(face: int, identity: str) -> str:
        k = row[face]
        distance = float(np.linalg.norm(event.vectors[k] - event.selfies[identity], axis=1).min())
        return f"distance to selfie {distance:.3f}, quality {event.qualities[k]:.2f}, {widths[face]:.0f} px wide"

    out(f"{len(event.face_ids)} faces, {len(whose)} placed; {len(attendees)} attendees; {match_thresholds()}")
    out("false matches:")
    for identity in attendees:
        for face in sorted(found[identity]):
            if whose.get(face) != identity:
                out(f"  {identity} <- {whose.get(face, 'unplaced')}: {describe(face, identity)}")
    out("misses:")
    photo_of = dict(zip(event.face_ids.tolist(), event.photo_ids.tolist(), strict=True))
    sizes = placed_sizes(args.composite)
    missed_photos = undetected_photos = 0
    for identity in attendees:
        own = [face for face, who in whose.items() if who == identity]
        seen = {event.photo_names[photo_of[face]] for face in own}
        undetected = sorted(event.truth.get(identity, set()) - seen)
        for face in sorted(own):
            if owner.get(face) != identity:
                taken = f"taken by {owner[face]}" if face in owner else "unmatched"
                out(f"  {identity}: {describe(face, identity)}, {taken}")
        if undetected:
            widths_placed = ", ".join(str(sizes.get((name, identity), "?")) for name in undetected)
            out(
                f"  {identity}: {len(undetected)} photo(s) where the detector found no face of theirs "
                f"(placed {widths_placed} px wide at analysis size)"
            )
        missed_photos += len(
            event.truth.get(identity, set()) - {event.photo_names[photo_of[f]] for f in found[identity]}
        )
        undetected_photos += len(undetected)
    out(f"photos missed: {missed_photos}, of which the detector found no face of the attendee: {undetected_photos}")
    out("own faces against the closest other identity, mean distance to the selfie:")
    for identity in attendees:
        selfie = event.selfies[identity]
        by_identity: dict[str, list[float]] = defaultdict(list)
        for face, who in whose.items():
            distance = float(np.linalg.norm(event.vectors[row[face]] - selfie, axis=1).min())
            by_identity[who].append(distance)
        own_distances = by_identity.pop(identity, [])
        if not own_distances or not by_identity:
            continue
        closest = min(by_identity, key=lambda who: float(np.mean(by_identity[who])))
        out(
            f"  {identity:28s} own {np.mean(own_distances):.3f} ({len(own_distances)} faces)   "
            f"{closest:28s} {np.mean(by_identity[closest]):.3f} ({len(by_identity[closest])} faces)"
        )
    out(neighbourhood_scales(event, match_thresholds()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
