"""Waiting for a condition or a server, with a deadline instead of fixed sleeps."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `condition` until it returns a true value, and return that value.

    Raises TimeoutError naming `what` when `timeout` seconds pass first; the
    condition is always tried at least once.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_for_drain(remaining: Callable[[], int], stall_timeout: float, what: str, interval: float = 0.5) -> None:
    """Poll `remaining` until it reaches 0, failing only when it stops going down.

    A busy machine drains slowly but steadily; a stuck one stops. So the bound is
    on progress (no decrease for `stall_timeout` seconds), not on the total time.
    """
    best = remaining()
    last_progress = time.monotonic()
    while best > 0:
        time.sleep(interval)
        now_remaining = remaining()
        if now_remaining < best:
            best, last_progress = now_remaining, time.monotonic()
        elif time.monotonic() - last_progress >= stall_timeout:
            raise TimeoutError(f"{what}: stuck at {best} for {stall_timeout:g} s")


def http_answers(url: str) -> bool:
    """True when something answers HTTP at `url`, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def wait_http(url: str, timeout: float = 30.0, alive: Callable[[], bool] | None = None) -> None:
    """Wait until a server answers at `url`; stop early with RuntimeError once `alive()` says it died."""

    def answers() -> bool:
        if alive is not None and not alive():
            raise RuntimeError(f"the server for {url} exited before it answered")
        return http_answers(url)

    wait_for(answers, timeout, f"{url} to answer")
