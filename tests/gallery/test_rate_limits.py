import pytest

pytestmark = pytest.mark.django_db


def test_my_photos_limit_answers_429_with_retry_after(client_for, member, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "my-photos": "5/m"}
    client = client_for(member)
    statuses = [client.get("/api/my-photos").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = client.get("/api/my-photos")
    assert limited["Retry-After"] == "60"
    assert "Too many requests" in limited.json()["detail"]


def test_default_my_photos_limit_is_60_per_minute(client_for, member):
    client = client_for(member)
    statuses = [client.get("/api/my-photos").status_code for _ in range(61)]
    assert statuses.count(429) == 1 and statuses[-1] == 429


def test_limits_are_per_user(client_for, member, make_user, event, settings):
    from gallery.models import Membership

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "my-photos": "2/m"}
    other = make_user("other")
    Membership.objects.create(user=other, event=event)
    for _ in range(3):
        client_for(member).get("/api/my-photos")
    assert client_for(other).get("/api/my-photos").status_code == 200


def test_token_endpoint_is_limited_per_ip(anon_client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "3/m"}
    statuses = [
        anon_client.post("/api/auth/token", {"username": "x", "password": "y"}, format="json").status_code
        for _ in range(4)
    ]
    assert statuses == [400, 400, 400, 429]


def test_upload_is_limited_per_photographer(client_for, photographer, event, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "upload": "1/m"}
    client = client_for(photographer)
    url = f"/api/photographer/events/{event.pk}/upload-photos"
    assert client.post(url, {}, format="multipart").status_code == 400
    assert client.post(url, {}, format="multipart").status_code == 429


def test_browser_gets_a_friendly_page(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "2/m"}
    for _ in range(2):
        client.post("/login/", {"username": "x", "password": "y"})
    response = client.post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 429
    assert response["Retry-After"]
    assert b"Too many tries" in response.content
