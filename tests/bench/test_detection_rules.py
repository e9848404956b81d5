"""bench/detection_rules.py on a small composite of the real faces: a lower near-miss bar never finds fewer faces."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench import detection_rules
from bench.composite_event import compose
from testsupport.paths import FACES_DIR

ROW = re.compile(r"^\s*(-?[\d.]+)\s+(\d+)\s+(\d+)/(\d+)\s+(\d+)/(\d+)\s")


@pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"real faces not found at {FACES_DIR} (PHOTOEVENT_FACES_DIR)")
def test_rows_report_found_faces_against_the_current_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "event"
    compose([FACES_DIR], folder, split="all", attendees=3, strangers_per_attendee=2, photos=4, seed=1)
    monkeypatch.setattr(sys, "argv", ["detection_rules", str(folder), "--near=-0.5,-1.5", "--photos", "2"])
    assert detection_rules.main() == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [ROW.match(line) for line in lines]
    table = [(float(m[1]), int(m[3]), int(m[4])) for m in rows if m]
    assert len(table) == 2, lines
    assert "(current)" in next(line for line in lines if ROW.match(line))
    (first_near, first_found, total), (_, lower_found, lower_total) = table
    assert first_near == -0.5 and total == lower_total > 0
    # Near misses down to -1.5 include those down to -0.5: looking at more places finds no fewer faces.
    assert first_found <= lower_found <= total
