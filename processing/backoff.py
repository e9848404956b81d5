"""One backoff rule for every retry loop: exponential growth with full jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float | None = None, floor: float = 0.0) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Full jitter (uniform between `floor` and the exponential ceiling) spreads
    clients that failed together, so they do not retry together.
    """
    ceiling = base * 2 ** min(max(attempt, 1) - 1, 30)
    if cap is not None:
        ceiling = min(ceiling, cap)
    return random.uniform(min(floor, ceiling), ceiling)


def scheduled_retry_delay(attempt: int, base: float, cap: float | None = None) -> float:
    """Seconds before a job that failed is run again from the queue: `backoff_delay`, never under half the base.

    A refused connection or a full disk tried again at once fails the same
    way, so a retry that waits in the queue always waits a while.
    """
    return backoff_delay(attempt, base, cap=cap, floor=base / 2)
