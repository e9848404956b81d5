"""bench/match_errors.py on a small composite of the real faces: every face is placed, errors say whose it is."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from bench import match_errors
from bench.composite_event import compose
from testsupport.paths import FACES_DIR

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(not FACES_DIR.is_dir(), reason=f"real faces not found at {FACES_DIR} (PHOTOEVENT_FACES_DIR)")
def test_each_detected_face_is_given_the_identity_pasted_there(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Any,
) -> None:
    settings.FACE_SELFIE_JITTERS = 1
    folder = tmp_path / "event"
    compose([FACES_DIR], folder, split="all", attendees=3, strangers_per_attendee=2, photos=4, seed=1)
    dump = tmp_path / "event.npz"
    call_command("evaluate_matching", str(folder), "--live", "--json", "--dump", str(dump), stdout=sys.stderr)
    capsys.readouterr()

    monkeypatch.setattr(sys, "argv", ["match_errors", str(dump), str(folder)])
    assert match_errors.main() == 0
    lines = capsys.readouterr().out.splitlines()

    counts = re.match(r"(\d+) faces, (\d+) placed; 3 attendees", lines[0])
    assert counts, lines
    assert int(counts[1]) == int(counts[2]) > 0
    start = lines.index("own faces against the closest other identity, mean distance to the selfie:")
    rows = [
        re.match(r"\s+(\S+)\s+own (\d\.\d+) \((\d+) faces\)\s+(\S+)\s+(\d\.\d+)", line)
        for line in lines[start + 1 : -1]
    ]
    assert lines[-1].startswith("median neighbourhood scale: weak faces ")
    assert rows and all(rows), lines
    # Every attendee's own faces are closer to their selfie than anyone else's are.
    assert all(float(row[2]) < float(row[5]) for row in rows if row)
    assert all(" <- " in line and "distance to selfie" in line for line in lines[2 : lines.index("misses:")])
