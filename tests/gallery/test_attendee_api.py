"""Join, selfie, my-photos and all-photos through the API, with the marker backend."""

import pytest
from django.utils import timezone

from gallery.models import EventVisibility, Match, Membership, Photo, PhotoStatus, Selfie
from tests.conftest import png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def event_with_photos(client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks):
    scenes = {"p0.png": [0, 1], "p1.png": [1], "p2.png": [2, 3], "p3.png": [0]}
    files = [png_upload(name, scene_png(people, seed=i)) for i, (name, people) in enumerate(scenes.items())]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
        )
    assert response.status_code == 202
    return {job["filename"]: job["photo_id"] for job in response.json()["jobs"]}


def selfie(client, person, **extra):
    return client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([person])), **extra})


def test_join_with_code(client_for, attendee, event):
    response = client_for(attendee).post("/api/events/join", {"code": event.code.lower()}, format="json")
    assert response.status_code == 200
    assert response.json() == {"event": {"id": event.pk, "name": "Wedding", "date": None}}
    assert Membership.objects.filter(user=attendee, event=event).exists()


def test_join_unknown_code_is_404(client_for, attendee):
    response = client_for(attendee).post("/api/events/join", {"code": "NOPE1234"}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_selfie_then_my_photos_shows_exactly_my_photos(client_for, attendee, event, event_with_photos):
    client = client_for(attendee)
    client.post("/api/events/join", {"code": event.code}, format="json")
    response = selfie(client, 0)
    assert response.status_code == 200
    assert response.json() == {"faces_found": 1}
    body = client.get("/api/my-photos").json()
    assert body["event"] == event.pk
    assert {p["id"] for p in body["photos"]} == {event_with_photos["p0.png"], event_with_photos["p3.png"]}
    first = body["photos"][0]
    assert set(first) >= {"id", "thumbnail_url", "url", "similarity"}
    assert first["similarity"] == pytest.approx(1.0)


def test_selfie_before_join_is_matched_on_join(client_for, attendee, event, event_with_photos):
    client = client_for(attendee)
    assert selfie(client, 1).status_code == 200
    client.post("/api/events/join", {"code": event.code}, format="json")
    ids = {p["id"] for p in client.get(f"/api/my-photos?event={event.pk}").json()["photos"]}
    assert ids == {event_with_photos["p0.png"], event_with_photos["p1.png"]}


def test_new_selfie_beyond_the_limit_replaces_the_oldest(client_for, member, event, event_with_photos, settings):
    settings.MAX_SELFIES = 1
    client = client_for(member)
    selfie(client, 0)
    selfie(client, 2)
    ids = {p["id"] for p in client.get("/api/my-photos").json()["photos"]}
    assert ids == {event_with_photos["p2.png"]}
    assert member.selfies.count() == 1


def test_photo_processed_after_selfie_is_matched(
    client_for, photographer, member, event, fake_backend, django_capture_on_commit_callbacks
):
    client = client_for(member)
    selfie(client, 4)
    assert client.get("/api/my-photos").json()["photos"] == []
    with django_capture_on_commit_callbacks(execute=True):
        client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos",
            {"photos": [png_upload("late.png", scene_png([4, 5]))]},
            format="multipart",
        )
    assert len(client.get("/api/my-photos").json()["photos"]) == 1


def test_selfie_with_several_faces_uses_the_largest(client_for, member, event, event_with_photos):
    from PIL import Image, ImageDraw

    from tests.fakes import MARKERS

    image = Image.new("RGB", (400, 300), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, 49, 49], fill=MARKERS[0])
    draw.rectangle([100, 10, 259, 169], fill=MARKERS[2])
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    client = client_for(member)
    response = client.post("/api/me/selfie", {"selfie": png_upload("two.png", buffer.getvalue())})
    assert response.json() == {"faces_found": 2}
    ids = {p["id"] for p in client.get("/api/my-photos").json()["photos"]}
    assert ids == {event_with_photos["p2.png"]}


def test_selfie_without_face_is_400_and_keeps_old_selfie(client_for, member, event, event_with_photos):
    client = client_for(member)
    selfie(client, 0)
    response = client.post("/api/me/selfie", {"selfie": png_upload("wall.png", scene_png([]))})
    assert response.status_code == 400
    assert response.json() == {"detail": "No face found in the selfie"}
    assert len(client.get("/api/my-photos").json()["photos"]) == 2


def test_selfie_garbage_and_missing_field(client_for, member, fake_backend):
    client = client_for(member)
    garbage = client.post("/api/me/selfie", {"selfie": png_upload("x.png", b"\x89PNG not really")})
    assert garbage.status_code == 400
    assert "image" in garbage.json()["detail"]
    missing = client.post("/api/me/selfie", {})
    assert missing.status_code == 400
    assert "selfie" in missing.json()["detail"]


def test_selfie_refused_without_consent(client_for, make_user, fake_backend):
    user = make_user("shy", consent=False)
    response = selfie(client_for(user), 0, consent="false")
    assert response.status_code == 400
    assert user.selfies.count() == 0


def test_non_member_gets_404_as_for_no_event(client_for, make_user, event, event_with_photos):
    stranger = client_for(make_user("stranger"))
    for path in ("/api/my-photos", "/api/all-photos"):
        known = stranger.get(f"{path}?event={event.pk}")
        unknown = stranger.get(f"{path}?event=987654")
        assert known.status_code == unknown.status_code == 404
        assert known.json() == unknown.json()


def test_event_must_be_named_when_several_joined(client_for, member, photographer):
    from gallery.models import Event

    second = Event.objects.create(owner=photographer, name="Other")
    Membership.objects.create(user=member, event=second)
    response = client_for(member).get("/api/my-photos")
    assert response.status_code == 400
    assert "event" in response.json()["detail"]
    assert client_for(member).get("/api/my-photos?event=abc").status_code == 400
    assert client_for(member).get("/api/my-photos?event=987654").status_code == 404


def test_all_photos_lists_processed_photos_paginated(client_for, member, event, event_with_photos, settings):
    Photo.objects.filter(pk=event_with_photos["p3.png"]).update(status=PhotoStatus.FAILED)
    body = client_for(member).get("/api/all-photos").json()
    assert body["count"] == 3
    assert {p["id"] for p in body["results"]} == {event_with_photos[n] for n in ("p0.png", "p1.png", "p2.png")}
    assert "similarity" not in body["results"][0]


def test_own_only_events_show_guests_only_their_photos(client_for, member, event, event_with_photos):
    event.visibility = EventVisibility.OWN
    event.save()
    client = client_for(member)
    selfie(client, 1)
    # Such an event opens a guest's photos to a live selfie only (tests/gallery/test_live_selfie_api.py).
    Selfie.objects.filter(user=member).update(live_verified_at=timezone.now())
    ids = {p["id"] for p in client.get("/api/all-photos").json()["results"]}
    assert ids == {event_with_photos["p0.png"], event_with_photos["p1.png"]}
    assert Match.objects.filter(user=member).count() == 2


def test_face_service_outage_is_503_and_stores_nothing(client_for, member, event, fake_backend, monkeypatch):
    from processing.backends.base import TransientBackendError

    def outage(*args, **kwargs):
        raise TransientBackendError("ThrottlingException")

    monkeypatch.setattr(type(fake_backend), "enrol_selfie", outage)
    response = selfie(client_for(member), 0)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "try again" in response.json()["detail"]
    assert member.selfies.count() == 0
