"""bench/detection_rules.py on a small composite of the real faces: lower detection bars never find fewer faces."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bench import detection_rules
from bench.composite_event import compose
from testsupport.paths import FACES_DIR

SIDES_HEADER = "analysis side  found  small  ms/scene  ratio (current rules)"
SIDE_ROW = re.compile(r"^\s*(\d+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s")
# near, context, near-miss width, small, crowd, found/total, small found/total, ms/scene, ms/photo, ratio,
# upsampled kpx/photo
ROW = re.compile(
    r"^\s*(-?[\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(-?[\d.]+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)\s"
)


@pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"real faces not found at {FACES_DIR} (PHOTOEVENT_FACES_DIR)")
def test_rows_report_found_faces_against_the_current_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "event"
    compose([FACES_DIR], folder, split="all", attendees=3, strangers_per_attendee=2, photos=4, seed=1)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "detection_rules",
            str(folder),
            "--near=-0.9,-1.5",
            "--context",
            "2,4",
            "--crowd-score=-0.5,0",
            "--photos",
            "2",
            "--sides",
            "800",
        ],
    )
    assert detection_rules.main() == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [ROW.match(line) for line in lines]
    found = {(float(m[1]), int(m[2]), float(m[5])): (int(m[6]), int(m[7])) for m in rows if m}
    pixels = {(float(m[1]), int(m[2]), float(m[5])): int(m[10]) for m in rows if m}
    assert len(found) == 8, lines
    assert "(current)" in next(line for line in lines if ROW.match(line))
    assert next(m for m in rows if m).group(1, 2) == ("-0.9", "2")
    total = found[-0.9, 2, -0.5][1]
    assert total > 0 and {t for _, t in found.values()} == {total}
    # Near misses down to -1.5 include those down to -0.9: looking at more places finds no fewer faces
    # and reads no fewer upsampled pixels, nor does a wider look around each near miss;
    # nor does keeping a crowd's windows down to -0.5 rather than only the detector's own finds.
    for context in (2, 4):
        for crowd in (-0.5, 0.0):
            assert found[-0.9, context, crowd][0] <= found[-1.5, context, crowd][0] <= total
            assert pixels[-0.9, context, crowd] <= pixels[-1.5, context, crowd]
    for near in (-0.9, -1.5):
        assert pixels[near, 2, -0.5] <= pixels[near, 4, -0.5]
        for context in (2, 4):
            assert found[near, context, 0.0][0] <= found[near, context, -0.5][0]

    # The same scenes at another analysis size, the current one first; the placed faces are the same.
    sides = [SIDE_ROW.match(line) for line in lines[lines.index(SIDES_HEADER) + 1 :]]
    assert [int(m[1]) for m in sides if m] == [settings.PHOTO_ANALYSIS_MAX_SIDE, 800], lines
    assert [int(m[3]) for m in sides if m] == [total, total]
    assert "(current)" in lines[lines.index(SIDES_HEADER) + 1]
