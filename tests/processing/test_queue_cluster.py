"""The queue with a real qcluster subprocess: full queue, crashes, restarts, retries."""

import os
import signal

import pytest
from django.db.models import Count

from gallery.models import Face, Photo, PhotoStatus
from tests.cluster import wait_for
from tests.conftest import png_upload
from tests.fakes import FLAKY, POISON, scene_png

pytestmark = pytest.mark.slow

FAST = {"PHOTO_QUEUE_WORKERS": "2", "PHOTO_QUEUE_BATCH_SIZE": "3", "PHOTO_RETRY_BASE_DELAY": "0"}


def upload(client, event, people_lists, start=0):
    files = [
        png_upload(f"p{start + i}.png", scene_png(people, seed=start + i)) for i, people in enumerate(people_lists)
    ]
    return client.post(f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart")


def all_settled() -> bool:
    return not Photo.objects.filter(status__in=[PhotoStatus.QUEUED, PhotoStatus.PROCESSING]).exists()


def no_duplicate_faces() -> bool:
    per_photo = Face.objects.values("photo", "left", "top").annotate(n=Count("id")).filter(n__gt=1)
    return not per_photo.exists()


def test_queue_full_then_drain_processes_each_photo_once(start_cluster, client_for, photographer, event, settings):
    settings.PHOTO_QUEUE_MAX_SIZE = 12
    client = client_for(photographer)
    assert upload(client, event, [[i % 6, (i + 1) % 6] for i in range(12)]).status_code == 202
    full = upload(client, event, [[0]], start=100)
    assert full.status_code == 503
    assert int(full["Retry-After"]) > 0
    assert Photo.objects.count() == 12

    cluster = start_cluster(**FAST)
    wait_for(all_settled, 90, "the queue to drain")
    assert set(Photo.objects.values_list("status", flat=True)) == {PhotoStatus.DONE}
    assert set(Photo.objects.values_list("attempts", flat=True)) == {1}
    assert Face.objects.count() == 24 and no_duplicate_faces()
    for photo in Photo.objects.all():
        assert cluster.log.count(f"Processing job {photo.pk}: ") == 1
        assert f"[PhotoQueue] Job {photo.pk} enqueued" not in cluster.log  # enqueued by the web side
    assert upload(client, event, [[0]], start=100).status_code == 202


def test_kill_9_mid_batch_loses_nothing(start_cluster, client_for, photographer, event):
    env = {**FAST, "PHOTO_QUEUE_WORKERS": "1", "PHOTO_TASK_TIMEOUT": "5", "FAKE_BACKEND_DELAY": "0.7"}
    cluster = start_cluster(**env)
    assert upload(client_for(photographer), event, [[i % 5, 5] for i in range(9)]).status_code == 202

    def a_worker_is_mid_batch() -> bool:
        return (
            Photo.objects.filter(status=PhotoStatus.DONE).exists()
            and Photo.objects.filter(status=PhotoStatus.PROCESSING).exclude(worker="").exists()
        )

    wait_for(a_worker_is_mid_batch, 60, "a worker in the middle of a batch")
    victim = Photo.objects.filter(status=PhotoStatus.PROCESSING).first()
    os.kill(int(victim.worker.rpartition(":")[2]), signal.SIGKILL)

    wait_for(all_settled, 120, "recovery after kill -9")
    assert Photo.objects.filter(status=PhotoStatus.DONE).count() == 9
    victim.refresh_from_db()
    assert victim.attempts == 2
    assert Face.objects.count() == 18 and no_duplicate_faces()
    assert "reincarnated worker" in cluster.log


def test_restart_with_work_queued_resumes(start_cluster, client_for, photographer, event):
    first = start_cluster(**{**FAST, "PHOTO_QUEUE_WORKERS": "1", "FAKE_BACKEND_DELAY": "0.3"})
    assert upload(client_for(photographer), event, [[i % 6] for i in range(15)]).status_code == 202
    wait_for(lambda: Photo.objects.filter(status=PhotoStatus.DONE).count() >= 2, 60, "some progress")
    first.stop()
    pending = Photo.objects.exclude(status=PhotoStatus.DONE).count()
    assert pending > 0
    second = start_cluster(**FAST)
    wait_for(lambda: "[Startup] Photo queue initialized with" in second.log, 30, "the startup line")
    wait_for(all_settled, 90, "the queue to drain after restart")
    assert Photo.objects.filter(status=PhotoStatus.DONE).count() == 15
    assert no_duplicate_faces()
    queued_at_start = int(second.log.split("[Startup] Photo queue initialized with ")[1].split()[0])
    assert 0 < queued_at_start <= pending


def test_transient_failures_are_retried_and_permanent_ones_fail_fast(
    start_cluster, client_for, photographer, event, staff
):
    start_cluster(**FAST)
    response = upload(client_for(photographer), event, [[FLAKY], [POISON], [0]])
    jobs = {job["filename"]: job for job in response.json()["jobs"]}
    wait_for(all_settled, 120, "retries to finish")
    flaky = Photo.objects.get(pk=jobs["p0.png"]["photo_id"])
    poison = Photo.objects.get(pk=jobs["p1.png"]["photo_id"])
    assert (flaky.status, flaky.attempts, flaky.error) == (PhotoStatus.DONE, 2, "")
    assert (poison.status, poison.attempts) == (PhotoStatus.FAILED, 1)
    assert poison.error == "poisoned test image"
    job = client_for(staff).get(f"/api/admin/queue/jobs/{poison.job_id}").json()
    assert job["status"] == "failed" and job["error"] == "poisoned test image" and job["attempts"] == 1
