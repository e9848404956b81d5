"""Staff monitoring: the API endpoints and the admin page show the same figures."""

import pytest
from django.core.cache import cache

from gallery.models import Photo, PhotoStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def photos(event):
    for index, status in enumerate([PhotoStatus.DONE, PhotoStatus.FAILED, PhotoStatus.QUEUED, PhotoStatus.QUEUED]):
        Photo.objects.create(
            event=event, filename=f"{index}.jpg", sha256=str(index), format="JPEG", status=status, processing_ms=1000
        )


def test_stats_for_staff(client_for, staff, photos, settings):
    body = client_for(staff).get("/api/admin/queue/stats").json()
    assert body["counts"] == {"queued": 2, "processing": 0, "done": 1, "failed": 1}
    assert body["waiting"] == 2 and body["max_size"] == settings.PHOTO_QUEUE_MAX_SIZE
    assert body["oldest_waiting_age_s"] >= 0
    assert {"photos_per_minute", "processing_ms", "failures_last_hour", "workers_alive", "cache"} <= set(body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/admin/queue/stats"),
        ("post", "/api/admin/cache/clear"),
        ("get", "/api/admin/aws-metrics"),
        ("get", "/api/admin/aws-metrics/costs"),
    ],
)
def test_monitoring_refuses_everyone_but_staff(client_for, anon_client, member, photographer, method, path):
    assert getattr(anon_client, method)(path).status_code == 401
    assert getattr(client_for(member), method)(path).status_code == 403
    assert getattr(client_for(photographer), method)(path).status_code == 403


def test_job_detail_and_retry(client_for, staff, photos, django_capture_on_commit_callbacks, monkeypatch):
    from processing import tasks

    sent = []
    monkeypatch.setattr(tasks, "async_task", lambda *args, **kwargs: sent.append(args))
    failed = Photo.objects.get(status=PhotoStatus.FAILED)
    client = client_for(staff)
    job = client.get(f"/api/admin/queue/jobs/{failed.job_id}").json()
    assert job["status"] == "failed" and job["filename"] == failed.filename
    assert set(job) >= {"event", "attempts", "error", "enqueued_at", "started_at", "finished_at"}
    retried = client.post(f"/api/admin/queue/jobs/{failed.job_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert sent and sent[0][1] == [failed.pk]
    done = Photo.objects.get(status=PhotoStatus.DONE)
    assert client.post(f"/api/admin/queue/jobs/{done.job_id}/retry").status_code == 400
    assert client.get("/api/admin/queue/jobs/00000000-0000-0000-0000-000000000000").status_code == 404


def test_admin_monitoring_page_shows_the_figures_and_clears_the_cache(client, staff, photos):
    client.force_login(staff)
    page = client.get("/admin/monitoring/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 of at most" in html and "Workers alive" in html and "Clear the cache" in html
    cache.set("sentinel", 1)
    assert client.post("/admin/monitoring/").status_code == 302
    assert cache.get("sentinel") is None


def test_admin_monitoring_page_is_staff_only(client, member):
    client.force_login(member)
    assert client.get("/admin/monitoring/").status_code == 302


def test_admin_photo_list_filters_and_searches(client, staff, photos):
    staff.is_superuser = True  # the admin's model pages need permissions too
    staff.save()
    client.force_login(staff)
    response = client.get("/admin/gallery/photo/?status__exact=failed&q=1.jpg")
    assert response.status_code == 200
    assert "1.jpg" in response.content.decode()
