"""The embedded cache backend: diskcache, with its connections kept for the life of the process."""

from __future__ import annotations

from typing import Any

from diskcache import DjangoCache


class PersistentDiskCache(DjangoCache):  # type: ignore[misc]
    """diskcache's Django backend, without closing its SQLite connections after each request.

    Django calls `close()` on every cache when a request finishes. For diskcache
    that closes each shard's connection, and the next request reconnects and
    replays the shard's pragmas: more than half the CPU time of a cached page.
    diskcache's connections are already per thread and reopened after a fork,
    so keeping them is safe; they close when the process exits.
    """

    def close(self, **kwargs: Any) -> None:
        pass
