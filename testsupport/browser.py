"""Debian's Chromium driven by Playwright, the one way the browser tests start it.

Playwright never downloads a browser here: it drives /usr/bin/chromium, with
the flags that keep it from reaching out to the network on start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    """Skip the calling test, saying how to install it, when Debian's Chromium is absent."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package with `apt-get install -y chromium`")


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """A headless Chromium browser; `extra_args` add to the usual flags (a fake camera, say)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args], headless=True)
