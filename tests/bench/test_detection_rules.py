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
ROW = re.compile(r"^\s*(-?[\d.]+)\s+(\d+)\s+(-?[\d.]+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s")


@pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"real faces not found at {FACES_DIR} (PHOTOEVENT_FACES_DIR)")
def test_rows_report_found_faces_against_the_current_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "event"
    compose([FACES_DIR], folder, split="all", attendees=3, strangers_per_attendee=2, photos=4, seed=1)
    monkeypatch.setattr(
        sys,
        "argv",
        ["detection_rules", str(folder), "--near=-0.5,-1.5", "--crowd-score=-0.5,0", "--photos", "2", "--sides", "800"],
    )
    assert detection_rules.main() == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [ROW.match(line) for line in lines]
    found = {(float(m[1]), float(m[3])): (int(m[4]), int(m[5])) for m in rows if m}
    assert len(found) == 4, lines
    assert "(current)" in next(line for line in lines if ROW.match(line))
    assert next(m for m in rows if m)[1] == "-0.5"
    total = found[-0.5, -0.5][1]
    assert total > 0 and {t for _, t in found.values()} == {total}
    # Near misses down to -1.5 include those down to -0.5: looking at more places finds no fewer faces;
    # nor does keeping a crowd's windows down to -0.5 rather than only the detector's own finds.
    for crowd in (-0.5, 0.0):
        assert found[-0.5, crowd][0] <= found[-1.5, crowd][0] <= total
    for near in (-0.5, -1.5):
        assert found[near, 0.0][0] <= found[near, -0.5][0]

    # The same scenes at another analysis size, the current one first; the placed faces are the same.
    sides = [SIDE_ROW.match(line) for line in lines[lines.index(SIDES_HEADER) + 1 :]]
    assert [int(m[1]) for m in sides if m] == [settings.PHOTO_ANALYSIS_MAX_SIDE, 800], lines
    assert [int(m[3]) for m in sides if m] == [total, total]
    assert "(current)" in lines[lines.index(SIDES_HEADER) + 1]
