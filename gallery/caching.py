"""TTL caching of attendee photo lists.

Keys carry the event's `content_version`, which every processed photo, upload,
deletion and match refresh bumps, so a hit is never stale; the time-to-live only
bounds the memory used. Hit and miss counts are kept per process and added to
the shared cache every few seconds, so counting costs no write per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction

STATS_KEYS = {"hits": "cache-stats:hits", "misses": "cache-stats:misses"}
FLUSH_EVERY_S = 5.0

_pending = {"hits": 0, "misses": 0}
_last_flush = time.monotonic()
_lock = threading.Lock()


def _count(kind: str) -> None:
    global _last_flush
    with _lock:
        _pending[kind] += 1
        if time.monotonic() - _last_flush < FLUSH_EVERY_S:
            return
        counts = dict(_pending)
        _pending.update(hits=0, misses=0)
        _last_flush = time.monotonic()
    flush_counts(counts)


def flush_counts(counts: dict[str, int] | None = None) -> None:
    """Add the per-process counts to the shared ones."""
    if counts is None:
        with _lock:
            counts = dict(_pending)
            _pending.update(hits=0, misses=0)
    for kind, delta in counts.items():
        if not delta:
            continue
        if not cache.add(STATS_KEYS[kind], delta, timeout=None):
            try:
                cache.incr(STATS_KEYS[kind], delta)
            except ValueError:
                cache.set(STATS_KEYS[kind], delta, timeout=None)


def forget_on_commit(*keys: str) -> None:
    """Drop cached rows that a write changes: at once, and again when the write commits.

    The second time catches a reader that loaded the old row while the write
    was still open and cached it after the first delete.
    """
    cache.delete_many(list(keys))
    transaction.on_commit(lambda: cache.delete_many(list(keys)))


def cached(key: str, ttl: int, compute: Callable[[], Any]) -> Any:
    """The cached value for `key`, computing and storing it on a miss."""
    value = cache.get(key)
    if value is not None:
        _count("hits")
        return value
    _count("misses")
    value = compute()
    cache.set(key, value, ttl)
    return value


def cache_stats() -> dict[str, Any]:
    flush_counts()
    hits, misses = (int(cache.get(key) or 0) for key in STATS_KEYS.values())
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / total, 3) if total else None}


def clear_cache() -> None:
    cache.clear()
