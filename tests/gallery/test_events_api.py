import pytest

from gallery.models import Event, Membership, Photo, PhotoStatus

pytestmark = pytest.mark.django_db


def test_photographer_creates_event_with_code(client_for, photographer):
    response = client_for(photographer).post(
        "/api/photographer/events", {"name": "Race", "date": "2026-11-28"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Race" and body["date"] == "2026-11-28"
    assert len(body["code"]) == 8
    assert Event.objects.get(pk=body["id"]).owner == photographer


def test_event_codes_are_unique(client_for, photographer):
    client = client_for(photographer)
    codes = {
        client.post("/api/photographer/events", {"name": f"E{i}"}, format="json").json()["code"] for i in range(20)
    }
    assert len(codes) == 20


def test_bad_date_is_400(client_for, photographer):
    response = client_for(photographer).post("/api/photographer/events", {"name": "X", "date": "soon"}, format="json")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["detail"]


def test_list_shows_only_own_events(client_for, photographer, other_photographer, event):
    Event.objects.create(owner=other_photographer, name="Not mine")
    response = client_for(photographer).get("/api/photographer/events")
    assert [e["name"] for e in response.json()["results"]] == ["Wedding"]


def test_attendee_cannot_create_events(client_for, attendee):
    response = client_for(attendee).post("/api/photographer/events", {"name": "X"}, format="json")
    assert response.status_code == 403


def test_event_detail_counts_photos_by_status(client_for, photographer, event):
    for index, status in enumerate([PhotoStatus.DONE, PhotoStatus.DONE, PhotoStatus.FAILED, PhotoStatus.QUEUED]):
        Photo.objects.create(event=event, filename=f"{index}.jpg", sha256=str(index), format="JPEG", status=status)
    body = client_for(photographer).get(f"/api/photographer/events/{event.pk}").json()
    assert body["photos"] == {"total": 4, "queued": 1, "processing": 0, "done": 2, "failed": 1}
    assert body["code"] == event.code
    assert body["link"].endswith(f"/e/{event.code}/")


def test_other_photographers_event_is_404_like_an_unknown_one(client_for, other_photographer, event):
    client = client_for(other_photographer)
    for path in ("", "/photos"):
        known = client.get(f"/api/photographer/events/{event.pk}{path}")
        unknown = client.get(f"/api/photographer/events/999999{path}")
        assert known.status_code == unknown.status_code == 404
        assert known.json() == unknown.json()


def test_a_photographer_who_joined_the_event_gets_403(client_for, other_photographer, event):
    # A guest of the event knows it exists, but may not act as its photographer.
    Membership.objects.create(user=other_photographer, event=event)
    client = client_for(other_photographer)
    assert client.get(f"/api/photographer/events/{event.pk}").status_code == 403
    assert client.get(f"/api/photographer/events/{event.pk}/photos").status_code == 403
    assert client.get(f"/api/my-photos?event={event.pk}").status_code == 200
