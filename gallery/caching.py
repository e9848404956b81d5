"""TTL caching of attendee photo lists, keyed on a content version so a hit is never stale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import cache

_STATS_KEYS = ("cache-stats:hits", "cache-stats:misses")


def _count(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:
        cache.add(key, 1, timeout=None)


def cached(key: str, ttl: int, compute: Callable[[], Any]) -> Any:
    """The cached value for `key`, computing and storing it on a miss."""
    value = cache.get(key)
    if value is not None:
        _count(_STATS_KEYS[0])
        return value
    _count(_STATS_KEYS[1])
    value = compute()
    cache.set(key, value, ttl)
    return value


def cache_stats() -> dict[str, Any]:
    hits, misses = (cache.get(k) or 0 for k in _STATS_KEYS)
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / total, 3) if total else None}


def clear_cache() -> None:
    cache.clear()
