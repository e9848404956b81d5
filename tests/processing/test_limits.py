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
from testsupport.waiting import wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"
PROCESSES = 4
ROUNDS = 6
# How long a holder keeps its slot once the limit was reached, so that others contend.
HOLD = 0.02
# A bound for events that take milliseconds: the limit being reached, a lease running out.
FULL_TIMEOUT = 30.0

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
    """Holders of a slot seen across processes and threads: how many at once, at most, and in all.

    Each holder keeps its slot until `limit` holders were inside together (an
    event, not a duration), so a limiter that lets in fewer than its limit is
    caught, and the waiting holders press on the limiter meanwhile, so one that
    lets in more is caught too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = fork.Lock()
        self.current = fork.Value("i", 0, lock=False)
        self.maximum = fork.Value("i", 0, lock=False)
        self.total = fork.Value("i", 0, lock=False)
        self.reached = fork.Value("i", 0, lock=False)
        self.full = fork.Event()

    def hold(self) -> None:
        """One operation inside a slot."""
        with self.lock:
            self.current.value += 1
            self.total.value += 1
            self.maximum.value = max(self.maximum.value, self.current.value)
            if self.current.value >= self.limit:
                self.reached.value = 1
                self.full.set()
        # Without `limit` holders at once this waits in vain; `reached` stays 0
        # and the test fails, after one timeout rather than one per holder.
        if not self.full.wait(FULL_TIMEOUT):
            self.full.set()
        # A short hold after that keeps the other holders waiting on the limiter.
        time.sleep(HOLD)
        with self.lock:
            self.current.value -= 1

    def check(self, operations: int) -> None:
        assert self.total.value == operations
        assert self.maximum.value <= self.limit, f"{self.maximum.value} holders at once, limit {self.limit}"
        assert self.reached.value, f"never {self.limit} holders at once (at most {self.maximum.value})"


def run_processes(target: Callable[[], None], count: int = PROCESSES) -> None:
    # Start together, so that on a busy machine staggered forks do not run one after another.
    barrier = fork.Barrier(count)

    def start() -> None:
        barrier.wait(FULL_TIMEOUT)
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
    limiter = make_limiter(kind, tmp_path, redis_key, limit, wait=FULL_TIMEOUT)
    gauge = Gauge(limit)

    def worker() -> None:
        for _ in range(ROUNDS):
            with limiter.slot():
                gauge.hold()

    run_processes(worker)
    gauge.check(PROCESSES * ROUNDS)


@pytest.mark.parametrize("kind", KINDS)
def test_threads_of_one_process_share_the_limit(kind: str, tmp_path: Any, redis_key: str) -> None:
    import threading

    limiter = make_limiter(kind, tmp_path, redis_key, 2, wait=FULL_TIMEOUT)
    gauge = Gauge(2)

    def worker() -> None:
        for _ in range(ROUNDS):
            with limiter.slot():
                gauge.hold()

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gauge.check(5 * ROUNDS)


def _hold_until_killed(limiter: Any, ready: Any) -> None:
    with limiter.slot():
        ready.set()
        while True:
            signal.pause()


def redis_now_ms(limiter: RedisLimiter) -> int:
    """The Redis server's clock, which scores the leases, in milliseconds."""
    seconds, microseconds = limiter.client.time()
    return int(seconds) * 1000 + int(microseconds) // 1000


def lease_expiry_ms(limiter: RedisLimiter) -> float:
    """When the one lease in the semaphore ends, in the Redis server's milliseconds."""
    leases: Any = limiter.client.zrange(limiter.key, 0, -1, withscores=True)
    assert len(leases) == 1, leases
    return float(leases[0][1])


@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_holder_does_not_keep_its_slot(kind: str, tmp_path: Any, redis_key: str) -> None:
    limiter = make_limiter(kind, tmp_path, redis_key, 1, **({"lease": 1.0} if kind == "redis" else {}))
    ready = fork.Event()
    holder = fork.Process(target=_hold_until_killed, args=(limiter, ready))
    holder.start()
    try:
        assert ready.wait(FULL_TIMEOUT)
        if kind == "redis":
            # Past the end of its first 1 s lease, the live holder has renewed it.
            first_expiry = lease_expiry_ms(limiter)
            wait_for(lambda: redis_now_ms(limiter) > first_expiry, FULL_TIMEOUT, "the first lease to end")
            assert lease_expiry_ms(limiter) > first_expiry
        # Held: nobody else gets in.
        with pytest.raises(SlotTimeout), limiter.slot(wait=0):
            pass
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(FULL_TIMEOUT)
    assert holder.exitcode == -signal.SIGKILL
    if kind == "file":
        # The kernel dropped the dead holder's lock: one attempt, with no waiting, gets the slot.
        with limiter.slot(wait=0):
            pass
        return
    # The dead holder's lease ends within one lease length of its death...
    assert lease_expiry_ms(limiter) - redis_now_ms(limiter) <= limiter.lease_ms
    # ...and then the slot is free.
    with limiter.slot(wait=FULL_TIMEOUT):
        pass


@pytest.mark.parametrize("kind", KINDS)
def test_stubbed_rekognition_calls_from_processes_respect_aws_concurrent_requests(
    kind: str, settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, redis_key: str
) -> None:
    """Four processes call a stubbed Rekognition operation through the backend, which holds its slot."""
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
    gauge = Gauge(settings.AWS_CONCURRENT_REQUESTS)

    def worker() -> None:
        # The test database belongs to the parent process; the calls are what is measured here.
        metrics.record_call = lambda *args, **kwargs: None  # type: ignore[assignment]
        client = build_client()
        stubber = Stubber(client)
        client.meta.events.register_first("before-call.*.*", lambda **kwargs: gauge.hold())
        for _ in range(ROUNDS):
            stubber.add_response("detect_faces", {"FaceDetails": []})
        stubber.activate()
        backend = RekognitionBackend(client=client)
        for _ in range(ROUNDS):
            backend.call("DetectFaces", None, Image={"Bytes": b"jpeg"})

    run_processes(worker)
    gauge.check(PROCESSES * ROUNDS)
