"""Debian's Chromium driven by Playwright, the one way the browser tests start it.

Playwright never downloads a browser here: it drives /usr/bin/chromium, with
the flags that keep it from reaching out to the network on start.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from testsupport.paths import REPO

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
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# Chromium sometimes refuses a full-page capture while the page is still being
# laid out after a navigation ("Unable to capture screenshot"); a moment later it works.
SCREENSHOT_ATTEMPTS = 3


def require_chromium() -> None:
    """Skip the calling test, saying how to install it, when Debian's Chromium is absent."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package with `apt-get install -y chromium`")


@contextmanager
def browser_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Playwright's sync API, for a test whose ORM calls run between browser steps.

    Skips the test without Debian's Chromium or Playwright. Playwright keeps an
    event loop running in the test's thread, and Django's connection handler then
    gives the ORM calls connections of their own, which the test database's
    teardown does not know of: they are closed on the way out, or PostgreSQL
    refuses to drop the test database while they are open.
    """
    require_chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the browser is Debian's)")
    # The ORM calls run synchronously between browser steps, which is safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        try:
            yield playwright
        finally:
            from django.db import connections

            connections.close_all()


def launch_chromium(playwright: Any, *extra_args: str) -> Any:
    """A headless Chromium browser; `extra_args` add to the usual flags (a fake camera, say)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args], headless=True)


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot of `page` as test-artifacts/screenshots/`name`.png; returns its path.

    The screenshot is a record for people, not a check: it waits for the page
    to have loaded and tries again when Chromium refuses a capture mid-layout.
    """
    from playwright.sync_api import Error

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_load_state("load")
    for attempt in range(1, SCREENSHOT_ATTEMPTS):
        try:
            page.screenshot(path=str(path), full_page=True)
            return path
        except Error as exc:
            if "Unable to capture screenshot" not in str(exc):
                raise
            time.sleep(0.2 * attempt)
    # The last attempt's refusal, if any, fails the test.
    page.screenshot(path=str(path), full_page=True)
    return path
