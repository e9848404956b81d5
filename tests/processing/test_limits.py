"""The global face-service limit, with real processes: lock files and Redis."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from processing import limits, metrics
from processing.limits import FileLockLimiter, RedisLimiter, SlotTimeout

REDIS_URL = "redis://127.0.0.1:6379/0"
PROCESSES = 4
ROUNDS = 6
SLOW = 0.2

fork = multiprocessing.get_context("fork")


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason=f"no Redis at {REDIS_URL}")


@pytest.fixture
def redis_key() -> Iterator[str]:
    import redis

    key = f"test-photoevent:{uuid.uuid4().hex}:"
    yield key
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(f"{key}*"):
        client.delete(name)


class Gauge:
    """Concurrency seen across processes: current and maximum."""

    def __init__(self) -> None:
        self.lock = fork.Lock()
        self.current = fork.Value("i", 0, lock=False)
        self.maximum = fork.Value("i", 0, lock=False)
        self.total = fork.Value("i", 0, lock=False)

    def slow_operation(self) -> None:
        with self.lock:
            self.current.value += 1
            self.total.value += 1
            self.maximum.value = max(self.maximum.value, self.current.value)
        time.sleep(SLOW)
        with self.lock:
            self.current.value -= 1


def run_processes(target: Callable[[], None], count: int = PROCESSES) -> None:
    # Start together, so that on a busy machine staggered forks do not run one after another.
    barrier = fork.Barrier(count)

    def start() -> None:
        barrier.wait(30)
        target()

    processes = [fork.Process(target=start) for _ in range(count)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0


def make_limiter(kind: str, tmp_path: Any, key: str, limit: int, **kwargs: Any) -> Any:
    if kind == "file":
        return FileLockLimiter(tmp_path / "locks", limit, "test", **kwargs)
    return RedisLimiter(REDIS_URL, limit, f"{key}sem", **kwargs)


KINDS = [pytest.param("file", id="lock-files"), pytest.param("redis", id="redis", marks=needs_redis)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("limit", [1, 3])
def test_processes_never_exceed_the_limit(kind: str, limit: int, tmp_path: Any, redis_key: str) -> None:
    limiter = make_limiter(kind, tmp_path, redis_key, limit, wait=30)
    gauge = Gauge()

    def worker() -> None:
        for _ in range(ROUNDS):
            with limiter.slot():
                gauge.slow_operation()

    run_processes(worker)
    assert gauge.total.value == PROCESSES * ROUNDS
    assert gauge.maximum.value == limit


@pytest.mark.parametrize("kind", KINDS)
def test_threads_of_one_process_share_the_limit(kind: str, tmp_path: Any, redis_key: str) -> None:
    import threading

    limiter = make_limiter(kind, tmp_path, redis_key, 2, wait=30)
    gauge = Gauge()

    def worker() -> None:
        for _ in range(ROUNDS):
            with limiter.slot():
                gauge.slow_operation()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gauge.maximum.value == 2


def _hold_until_killed(limiter: Any, ready: Any) -> None:
    with limiter.slot():
        ready.set()
        time.sleep(600)


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_holder_does_not_keep_its_slot(kind: str, tmp_path: Any, redis_key: str) -> None:
    limiter = make_limiter(kind, tmp_path, redis_key, 1, lease=1.0) if kind == "redis" else None
    limiter = limiter or make_limiter(kind, tmp_path, redis_key, 1)
    ready = fork.Event()
    holder = fork.Process(target=_hold_until_killed, args=(limiter, ready))
    holder.start()
    try:
        assert ready.wait(10)
        # Held (and, for Redis, renewed past its 1 s lease): nobody else gets in.
        with pytest.raises(SlotTimeout), limiter.slot(wait=1.6):
            pass
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
    started = time.monotonic()
    with limiter.slot(wait=5):
        freed_after = time.monotonic() - started
    # Lock files free at once; a Redis lease runs out within its length.
    assert freed_after < (1.5 if kind == "redis" else 0.5)


@pytest.mark.parametrize("kind", KINDS)
def test_stubbed_rekognition_calls_from_processes_respect_aws_concurrent_requests(
    kind: str, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, redis_key: str
) -> None:
    """Four processes call a slow stubbed Rekognition operation through the backend."""
    from botocore.stub import Stubber

    from processing.backends.rekognition import RekognitionBackend, build_client

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    settings.AWS_REGION = "eu-west-1"
    settings.AWS_CONCURRENT_REQUESTS = 3
    settings.FACE_LIMIT_LOCK_DIR = tmp_path / "locks"
    settings.FACE_LIMIT_REDIS_PREFIX = redis_key
    settings.REDIS_URL = REDIS_URL if kind == "redis" else ""
    expected = RedisLimiter if kind == "redis" else FileLockLimiter
    assert isinstance(limits.get_limiter("rekognition"), expected)
    gauge = Gauge()

    def worker() -> None:
        # The test database belongs to the parent process; the calls are what is measured here.
        metrics.record_call = lambda *args, **kwargs: None  # type: ignore[assignment]
        client = build_client()
        stubber = Stubber(client)
        client.meta.events.register_first("before-call.*.*", lambda **kwargs: gauge.slow_operation())
        for _ in range(ROUNDS):
            stubber.add_response("detect_faces", {"FaceDetails": []})
        stubber.activate()
        backend = RekognitionBackend(client=client)
        for _ in range(ROUNDS):
            backend.call("DetectFaces", None, Image={"Bytes": b"jpeg"})

    run_processes(worker)
    assert gauge.total.value == PROCESSES * ROUNDS
    assert gauge.maximum.value == settings.AWS_CONCURRENT_REQUESTS
