"""A limit on simultaneous face-service calls across processes.

Two implementations of one interface, `ConcurrencyLimiter.slot()`:

- `FileLockLimiter`: N lock files under FACE_LIMIT_LOCK_DIR, each held with
  ``flock``. It bounds every process of one machine without a server, and the
  kernel drops the lock of a process that dies, so a crash never leaks a slot.
- `RedisLimiter`: a semaphore in one Redis sorted set whose members are holder
  tokens scored by lease expiry (Redis server time, so clocks of different
  machines do not matter). Acquisition is one Lua script: drop expired leases,
  count, add. A live holder renews its leases from a background thread; a
  holder that dies stops renewing and its slot frees itself after the lease.

A per-process threading.Semaphore would not do: every web and queue worker
process would get its own N.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import redis
from django.conf import settings

from processing.backends.base import TransientBackendError
from processing.backoff import backoff_delay

logger = logging.getLogger("processing.limits")

# Polling interval bounds while all slots are taken; jitter spreads the waiters.
_POLL_MIN = 0.005
_POLL_MAX = 0.1


class SlotTimeout(TransientBackendError):
    """No slot became free within the wait limit; the caller should retry later."""


class LimiterUnavailable(TransientBackendError):
    """The shared limiter (Redis) cannot be reached."""


class ConcurrencyLimiter(Protocol):
    limit: int

    def slot(self, wait: float | None = None) -> Any:
        """A context manager holding one slot; raises SlotTimeout after `wait` seconds."""


def _sleep_backoff(attempt: int) -> int:
    """Sleep before polling again (the one backoff rule); returns the next attempt number."""
    time.sleep(backoff_delay(attempt, _POLL_MIN * 2, cap=_POLL_MAX, floor=_POLL_MIN))
    return attempt + 1


class FileLockLimiter:
    """At most `limit` holders across the processes of one machine (flock on N files)."""

    def __init__(self, directory: Path | str, limit: int, name: str, wait: float = 60.0) -> None:
        self.directory = Path(directory)
        self.limit = limit
        self.name = name
        self.wait = wait
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, index: int) -> Path:
        return self.directory / f"{self.name}-{index}.lock"

    def _try_acquire(self) -> int | None:
        # Start at a random file so that waiters do not all fight over slot 0.
        start = random.randrange(self.limit)
        for offset in range(self.limit):
            path = self._path((start + offset) % self.limit)
            # Each open() is its own open file description, so two threads of
            # one process exclude each other too (flock locks belong to it).
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    continue
                raise
            return fd
        return None

    @contextmanager
    def slot(self, wait: float | None = None) -> Iterator[None]:
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        attempt = 1
        fd = self._try_acquire()
        while fd is None:
            if time.monotonic() >= deadline:
                raise SlotTimeout(f"all {self.limit} {self.name} face-service slots stayed busy")
            attempt = _sleep_backoff(attempt)
            fd = self._try_acquire()
        try:
            yield
        finally:
            # Closing the descriptor releases the lock.
            os.close(fd)


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], lease * 2)
    return 1
end
return 0
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
    renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return renewed
"""


class RedisLimiter:
    """At most `limit` holders across every process that shares the Redis server."""

    def __init__(
        self,
        url: str,
        limit: int,
        key: str,
        *,
        lease: float = 30.0,
        wait: float = 60.0,
        client: Any = None,
    ) -> None:
        self.limit = limit
        self.key = key
        self.lease_ms = max(1000, int(lease * 1000))
        self.wait = wait
        self._redis_errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        # Short socket timeouts: a dead Redis must fail the call, not hang it.
        self.client = client or redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._renewer_pid = 0

    def _ensure_renewer(self) -> None:
        # After a fork the child has no renewer thread and must not renew the
        # parent's tokens; start afresh.
        if self._renewer is not None and self._renewer_pid == os.getpid() and self._renewer.is_alive():
            return
        with self._held_lock:
            if self._renewer_pid != os.getpid():
                self._held.clear()
            self._renewer_pid = os.getpid()
            self._renewer = threading.Thread(target=self._renew_loop, name=f"limiter-renew-{self.key}", daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        interval = self.lease_ms / 3000
        while True:
            time.sleep(interval)
            with self._held_lock:
                tokens = list(self._held)
            if not tokens:
                continue
            try:
                self._renew(keys=[self.key], args=[self.lease_ms, *tokens])
            except self._redis_errors as exc:
                logger.warning("Could not renew face-service slots in Redis: %s", exc)

    def _try_acquire(self, token: str) -> bool:
        try:
            return bool(self._acquire(keys=[self.key], args=[self.limit, self.lease_ms, token]))
        except self._redis_errors as exc:
            raise LimiterUnavailable(f"the concurrency limiter in Redis is unavailable: {exc}") from exc

    @contextmanager
    def slot(self, wait: float | None = None) -> Iterator[None]:
        token = f"{os.getpid()}-{uuid.uuid4().hex}"
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        attempt = 1
        while not self._try_acquire(token):
            if time.monotonic() >= deadline:
                raise SlotTimeout(f"all {self.limit} face-service slots ({self.key}) stayed busy")
            attempt = _sleep_backoff(attempt)
        self._ensure_renewer()
        with self._held_lock:
            self._held.add(token)
        try:
            yield
        finally:
            with self._held_lock:
                self._held.discard(token)
            try:
                self.client.zrem(self.key, token)
            except self._redis_errors as exc:
                # The lease runs out by itself; nothing is lost but some capacity for a while.
                logger.warning("Could not release a face-service slot in Redis: %s", exc)


_limiters: dict[tuple[Any, ...], ConcurrencyLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter(backend: str) -> ConcurrencyLimiter:
    """The process-wide limiter for a backend's calls, built from the current settings.

    Rekognition calls share AWS_CONCURRENT_REQUESTS across machines when
    REDIS_URL is set. The local backend's guard protects the CPU of the machine
    it runs on, so it always uses the lock files with LOCAL_FACE_CONCURRENCY.
    """
    if backend == "local":
        key: tuple[Any, ...] = (
            "file",
            "local-face",
            settings.LOCAL_FACE_CONCURRENCY,
            str(settings.FACE_LIMIT_LOCK_DIR),
        )
    elif settings.REDIS_URL:
        key = (
            "redis",
            f"{settings.FACE_LIMIT_REDIS_PREFIX}{backend}",
            settings.AWS_CONCURRENT_REQUESTS,
            settings.REDIS_URL,
        )
    else:
        key = ("file", f"{backend}-face", settings.AWS_CONCURRENT_REQUESTS, str(settings.FACE_LIMIT_LOCK_DIR))
    key = (*key, settings.FACE_LIMIT_WAIT_SECONDS, settings.FACE_LIMIT_LEASE_SECONDS)
    limiter = _limiters.get(key)
    if limiter is None:
        with _limiters_lock:
            limiter = _limiters.get(key)
            if limiter is None:
                kind, name, limit, location, wait, lease = key
                if kind == "redis":
                    limiter = RedisLimiter(location, limit, name, lease=lease, wait=wait)
                else:
                    limiter = FileLockLimiter(location, limit, name, wait=wait)
                _limiters[key] = limiter
    return limiter
