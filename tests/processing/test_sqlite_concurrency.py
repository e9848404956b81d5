"""Web uploads and two queue workers at once on SQLite: nothing fails with "database is locked"."""

import threading
import time
from collections import Counter

import pytest
import requests
from django.db import connection

from gallery.models import Photo, PhotoStatus
from gallery.tokens import issue_token
from tests.fakes import scene_png
from testsupport.waiting import wait_for_drain

pytestmark = pytest.mark.slow

DURATION_S = 30


def test_uploads_and_two_workers_never_hit_a_locked_database(start_cluster, start_server, photographer, event):
    if connection.vendor != "sqlite":
        pytest.skip("this leg runs on PostgreSQL; the SQLite leg runs this test")
    limits = {"PHOTO_QUEUE_MAX_SIZE": "100000", "RATE_LIMIT_UPLOAD": "100000/m", "RATE_LIMIT_MY_PHOTOS": "100000/m"}
    cluster = start_cluster(PHOTO_QUEUE_WORKERS="2", PHOTO_QUEUE_BATCH_SIZE="2", **limits)
    server = start_server(**limits)
    token = issue_token(photographer)
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + DURATION_S
    counter = iter(range(10**6))
    lock = threading.Lock()

    def photographer_loop() -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        while time.monotonic() < deadline:
            with lock:
                numbers = [next(counter), next(counter)]
            files = [("photos", (f"{n}.png", scene_png([n % 6], seed=n, size=(320 + n % 97, 240)))) for n in numbers]
            response = session.post(f"{server.url}/api/photographer/events/{event.pk}/upload-photos", files=files)
            session.get(f"{server.url}/api/photographer/events/{event.pk}/photos")
            with lock:
                statuses[response.status_code] += 1

    threads = [threading.Thread(target=photographer_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for_drain(
        lambda: Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING]).count(),
        120,
        "the queue draining",
    )
    assert set(statuses) == {202}, statuses
    assert statuses[202] > 20
    assert Photo.objects.filter(status=PhotoStatus.DONE).count() == Photo.objects.count()
    assert "database is locked" not in cluster.log
    assert "database is locked" not in server.log
