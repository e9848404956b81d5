"""Where the repository and the real face photos are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The one place that says where the real face photos are (tests skip, and
# benchmarks fall back to synthetic photos, when they are absent).
FACES_DIR = Path(os.environ.get("PHOTOEVENT_FACES_DIR", REPO.parent / "shared" / "faces"))
