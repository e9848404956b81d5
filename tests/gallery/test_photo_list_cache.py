"""my-photos and all-photos are cached, and a hit is never stale."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gallery.caching import cache_stats
from gallery.models import EventVisibility
from tests.conftest import png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def upload(client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks):
    def send(name, people):
        with django_capture_on_commit_callbacks(execute=True):
            response = client_for(photographer).post(
                f"/api/photographer/events/{event.pk}/upload-photos",
                {"photos": [png_upload(name, scene_png(people, seed=len(name)))]},
                format="multipart",
            )
        return response.json()["jobs"][0]["photo_id"]

    return send


def test_second_request_is_served_from_the_cache(client_for, member, upload):
    upload("a.png", [0])
    client = client_for(member)
    client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})
    first = client.get("/api/my-photos")
    with CaptureQueriesContext(connection) as uncached_queries:
        client.get("/api/all-photos")
    with CaptureQueriesContext(connection) as cached_queries:
        second = client.get("/api/my-photos")
        client.get("/api/all-photos")
    assert first.json() == second.json()
    assert not any("gallery_match" in q["sql"] for q in cached_queries.captured_queries)
    assert any("gallery_photo" in q["sql"] for q in uncached_queries.captured_queries)
    assert not any('FROM "gallery_photo"' in q["sql"] for q in cached_queries.captured_queries)
    stats = cache_stats()
    assert stats["hits"] >= 2 and stats["misses"] >= 2


def test_new_processed_photo_shows_on_the_next_request(client_for, member, upload):
    upload("a.png", [0])
    client = client_for(member)
    client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})
    assert len(client.get("/api/my-photos").json()["photos"]) == 1
    assert client.get("/api/all-photos").json()["count"] == 1
    new_id = upload("b.png", [0, 1])
    assert new_id in [p["id"] for p in client.get("/api/my-photos").json()["photos"]]
    assert client.get("/api/all-photos").json()["count"] == 2


def test_selfie_change_shows_on_the_next_request(client_for, member, upload, settings):
    settings.MAX_SELFIES = 1  # the second selfie replaces the first
    first = upload("a.png", [0])
    second = upload("b.png", [1])
    client = client_for(member)
    client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})
    assert [p["id"] for p in client.get("/api/my-photos").json()["photos"]] == [first]
    client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([1]))})
    assert [p["id"] for p in client.get("/api/my-photos").json()["photos"]] == [second]


def test_visibility_change_is_not_hidden_by_the_cache(client_for, member, event, upload):
    upload("a.png", [0])
    client = client_for(member)
    assert client.get("/api/all-photos").json()["count"] == 1
    event.visibility = EventVisibility.OWN
    event.save()
    assert client.get("/api/all-photos").json()["count"] == 0


def test_staff_can_clear_the_cache(client_for, staff, member, upload):
    from django.core.cache import cache

    upload("a.png", [0])
    client_for(member).get("/api/all-photos")
    cache.set("sentinel", 1)
    response = client_for(staff).post("/api/admin/cache/clear")
    assert response.status_code == 200
    assert cache.get("sentinel") is None
    assert client_for(member).get("/api/all-photos").json()["count"] == 1


@pytest.mark.parametrize("path", ["/api/my-photos", "/api/all-photos"])
def test_a_repeated_page_costs_no_query(client_for, member, event, upload, path, django_assert_num_queries):
    upload("a.png", [0])
    client = client_for(member)
    client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})
    first = client.get(f"{path}?event={event.pk}")
    with django_assert_num_queries(0):
        second = client.get(f"{path}?event={event.pk}")
    assert second.status_code == 200
    assert second.json() == first.json()
