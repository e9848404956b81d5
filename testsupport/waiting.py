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
