"""Makes the client packages under clients/ importable, as `manage.py watch_folder` does."""

from __future__ import annotations

import sys
from pathlib import Path

# The server runs the client from this checkout (see the comment in
# gallery/management/commands/watch_folder.py), so the tests import it from
# there too, never from a copy installed somewhere.
CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "watcher"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))
