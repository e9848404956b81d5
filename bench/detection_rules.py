"""Where to look for small faces: faces found against detection time, per rule setting.

processing/detection.py decides per photo whether the upsampled pass runs
(SMALL_FACE_PX, the smallest face the first pass may find without it), which
near misses get an upsampled look (NEAR_MISS_SCORE), how far around each one
that look reaches (NEAR_MISS_CONTEXT, in near-miss widths) and, in a crowd,
down to which score the upsampled pass keeps its windows (CROWD_MIN_SCORE; 0
keeps only the detector's own finds). The first three trade faces found for
time, the last for false finds, which the composites' plain backgrounds cannot
show.
This bench replays the detection alone, in this process, on:

- the scenes of composite events (bench/composite_event.py; tune on the
  tuning split), counting the attendees' placed faces that a box covers (its
  centre inside the pasted portrait), all and those under 80 px at analysis size;
- the photos of bench/processing_throughput.py, timing the detection per photo.

The current setting is measured first, in the same run, and every other row
prints its time as a ratio to it (the machine is shared). Because a few
looks more or less are lost in that noise, each row also prints the pixels the
upsampled detector reads per bench photo (after the doubling), which does not
depend on the machine.

With --sides, the scenes are also analysed at other sizes than
PHOTO_ANALYSIS_MAX_SIDE with the current rules (a larger analysis size for
crowded photos is the other way to find small faces): faces found and
detection time per scene, as a ratio to the current size.

    python -m bench.composite_event /tmp/tune-d3 --split tuning --seed 3
    .venv/bin/python bench/detection_rules.py /tmp/tune-d3 [/tmp/tune-d4 ...] \\
        [--near=-0.5,-0.9] [--context 2,4] [--small 80,90] [--crowd-score=0,-0.7] [--photos 60] \\
        [--sides 2000,2400]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import out
from bench.images import face_photos

SMALL_PX = 80


@dataclass(frozen=True)
class Scene:
    """A composite scene as the detector sees it, with the attendees' placed portraits at analysis size."""

    grey: Any
    attendees: list[tuple[float, float, float, float, int]]  # left, top, width, height, face px


def load_scenes(folders: list[Path], max_side: int) -> list[Scene]:
    import numpy as np
    from PIL import Image

    from processing.images import open_upright

    scenes = []
    for folder in folders:
        for entry in json.loads((folder / "manifest.json").read_text()):
            if entry.get("kind") != "group" or "placed" not in entry:
                continue
            path = folder / entry["file"]
            with Image.open(path) as original:
                full_width = original.width  # read from the header, nothing decoded
            with open(path, "rb") as handle:
                image = open_upright(handle, max_side)
            scale = image.width / full_width
            attending = set(entry["identities"])
            placed = [
                (x * scale, y * scale, w * scale, h * scale, px)
                for identity, x, y, w, h, px in entry["placed"]
                if identity in attending
            ]
            scenes.append(Scene(np.asarray(image.convert("L")), placed))
    return scenes


def covered(boxes: list[Any], left: float, top: float, width: float, height: float) -> bool:
    return any(
        left <= (b.left + b.right) / 2 <= left + width and top <= (b.top + b.bottom) / 2 <= top + height for b in boxes
    )


class CountingDetector:
    """The detector, counting the pixels its upsampled passes read (each doubling reads four times the pixels)."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.upsampled_pixels = 0

    def run(self, array: Any, upsample: int, threshold: float) -> Any:
        if upsample > 0:
            self.upsampled_pixels += array.shape[0] * array.shape[1] * 4**upsample
        return self.detector.run(array, upsample, threshold)


def measure(detector: Any, scenes: list[Scene], photos: list[Any], upsample: int) -> dict[str, float]:
    """Faces found on the scenes, detection seconds per photo on both sets, and the upsampled pixels
    read per bench photo, with the module's current rules."""
    from processing import detection

    found = total = small_found = small_total = 0
    started = time.perf_counter()
    for scene in scenes:
        boxes, _ = detection.find_boxes(detector, scene.grey, upsample)
        for left, top, width, height, px in scene.attendees:
            hit = covered(boxes, left, top, width, height)
            found, total = found + hit, total + 1
            if px < SMALL_PX:
                small_found, small_total = small_found + hit, small_total + 1
    scene_seconds = (time.perf_counter() - started) / max(len(scenes), 1)
    faces = 0
    # The count costs one addition per detector run: the same pass is timed and counted.
    counting = CountingDetector(detector)
    started = time.perf_counter()
    for grey in photos:
        faces += len(detection.find_boxes(counting, grey, upsample)[0])
    photo_seconds = (time.perf_counter() - started) / max(len(photos), 1)
    return {
        "found": found,
        "total": total,
        "small_found": small_found,
        "small_total": small_total,
        "scene_ms": scene_seconds * 1000,
        "photo_ms": photo_seconds * 1000,
        "photo_faces": faces,
        "upsampled_kpx": counting.upsampled_pixels / max(len(photos), 1) / 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="composite event folders (tuning split)")
    parser.add_argument("--near", default="", help="NEAR_MISS_SCORE values, comma-separated, as --near=-0.5,-0.9")
    parser.add_argument("--context", default="", help="NEAR_MISS_CONTEXT values, comma-separated (default: current)")
    parser.add_argument("--small", default="", help="SMALL_FACE_PX values, comma-separated (default: current)")
    parser.add_argument("--near-width", default="", help="NEAR_MISS_MAX_PX values, comma-separated (default: current)")
    parser.add_argument("--crowd-score", default="", help="CROWD_MIN_SCORE values, as --crowd-score=0,-0.7")
    parser.add_argument("--photos", type=int, default=60, help="throughput bench photos to time (default 60)")
    parser.add_argument("--sides", default="", help="other analysis sizes for the scenes, comma-separated")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photoevent.settings")
    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from processing import detection
    from processing.backends.local import models
    from processing.images import open_upright

    max_side = settings.PHOTO_ANALYSIS_MAX_SIDE
    upsample = settings.FACE_DETECT_UPSAMPLE
    current = (
        detection.NEAR_MISS_SCORE,
        detection.NEAR_MISS_CONTEXT,
        detection.SMALL_FACE_PX,
        detection.CROWD_MIN_SCORE,
        detection.NEAR_MISS_MAX_PX,
    )
    nears = [float(v) for v in args.near.split(",")] if args.near else [current[0]]
    contexts = [int(v) for v in args.context.split(",")] if args.context else [current[1]]
    smalls = [int(v) for v in args.small.split(",")] if args.small else [current[2]]
    crowds = [float(v) for v in args.crowd_score.split(",")] if args.crowd_score else [current[3]]
    widths = [int(v) for v in args.near_width.split(",")] if args.near_width else [current[4]]
    grid = itertools.product(nears, contexts, smalls, crowds, widths)
    settings_grid = [current] + [row for row in grid if row != current]

    detector = models().detector
    scenes = load_scenes(args.folders, max_side)
    photos = [np.asarray(open_upright(io.BytesIO(data), max_side).convert("L")) for _, data in face_photos(args.photos)]
    out(f"{len(scenes)} scenes, {sum(len(s.attendees) for s in scenes)} attendee faces; {len(photos)} bench photos")
    out(
        "NEAR_MISS_SCORE CONTEXT NEAR_MISS_MAX_PX SMALL_FACE_PX CROWD_MIN_SCORE  found  small  ms/scene  ms/photo  "
        "ratio  upsampled kpx/photo  bench faces"
    )
    baseline = 0.0
    for row in settings_grid:
        near, context, small, crowd, width = row
        detection.NEAR_MISS_SCORE, detection.NEAR_MISS_CONTEXT = near, context
        detection.SMALL_FACE_PX, detection.CROWD_MIN_SCORE = small, crowd
        detection.NEAR_MISS_MAX_PX = width
        figures = measure(detector, scenes, photos, upsample)
        baseline = baseline or figures["photo_ms"]
        label = " (current)" if row == current else ""
        out(
            f"{near:15g} {context:7d} {width:16d} {small:13d} {crowd:15g}  "
            f"{figures['found']:.0f}/{figures['total']:.0f}  "
            f"{figures['small_found']:.0f}/{figures['small_total']:.0f}  {figures['scene_ms']:8.1f}  "
            f"{figures['photo_ms']:8.1f}  {figures['photo_ms'] / baseline:5.2f}  "
            f"{figures['upsampled_kpx']:19.0f}  {figures['photo_faces']:.0f}{label}"
        )
    detection.NEAR_MISS_SCORE, detection.NEAR_MISS_CONTEXT = current[0], current[1]
    detection.SMALL_FACE_PX, detection.CROWD_MIN_SCORE = current[2], current[3]
    detection.NEAR_MISS_MAX_PX = current[4]
    if args.sides:
        out("analysis side  found  small  ms/scene  ratio (current rules)")
        scene_baseline = 0.0
        for side in [max_side] + [int(v) for v in args.sides.split(",") if int(v) != max_side]:
            figures = measure(detector, scenes if side == max_side else load_scenes(args.folders, side), [], upsample)
            scene_baseline = scene_baseline or figures["scene_ms"]
            label = " (current)" if side == max_side else ""
            out(
                f"{side:13d}  {figures['found']:.0f}/{figures['total']:.0f}  "
                f"{figures['small_found']:.0f}/{figures['small_total']:.0f}  {figures['scene_ms']:8.1f}  "
                f"{figures['scene_ms'] / scene_baseline:5.2f}{label}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
