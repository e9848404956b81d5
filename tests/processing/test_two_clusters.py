"""Two qcluster processes, standing in for two worker hosts, share one queue."""

import pytest
from django.conf import settings
from django.db import connection

from gallery.models import Face, Photo, PhotoStatus
from tests.cluster import wait_for
from tests.conftest import png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.slow


def test_two_clusters_process_every_photo_exactly_once(start_cluster, client_for, photographer, event):
    if connection.vendor != "postgresql" or "redis" not in settings.Q_CLUSTER:
        pytest.skip("this leg runs on SQLite; the PostgreSQL + Redis broker leg runs this test")
    env = {"PHOTO_QUEUE_WORKERS": "2", "PHOTO_QUEUE_BATCH_SIZE": "2", "FAKE_BACKEND_DELAY": "0.05"}
    first, second = start_cluster(**env), start_cluster(**env)
    client = client_for(photographer)
    for start in range(0, 40, 10):
        files = [
            png_upload(f"p{n}.png", scene_png([n % 6, (n + 2) % 6], seed=n, size=(400 + n, 300)))
            for n in range(start, start + 10)
        ]
        response = client.post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
        )
        assert response.status_code == 202
    wait_for(
        lambda: Photo.objects.filter(status=PhotoStatus.DONE).count() == 40, 120, "both clusters to drain the queue"
    )
    assert set(Photo.objects.values_list("attempts", flat=True)) == {1}
    assert Face.objects.count() == 80
    logs = first.log + second.log
    for photo_id in Photo.objects.values_list("pk", flat=True):
        assert logs.count(f"Processing job {photo_id}: ") == 1
    assert "Processing job" in first.log and "Processing job" in second.log
