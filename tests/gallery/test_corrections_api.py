"""The correction endpoints: `POST|DELETE /api/photos/{id}/not-me` and `POST /api/photos/{id}/me`."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from gallery.models import EventVisibility, Face, Match, Membership, Photo, Selfie
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest(client_for: Any, member: Any, event_photos: dict[str, Photo]) -> Any:
    """The member's API client, with a selfie of marker person 0 (in p0 and p3)."""
    client = client_for(member)
    assert client.post("/api/me/selfie", {"selfie": selfie_file([0])}).status_code == 200
    return client


def my_ids(client: Any) -> set[int]:
    return {p["id"] for p in client.get("/api/my-photos").json()["photos"]}


def test_not_me_and_its_undo(guest: Any, event_photos: dict[str, Photo]) -> None:
    p0, p3 = event_photos["p0.png"].pk, event_photos["p3.png"].pk
    assert my_ids(guest) == {p0, p3}
    response = guest.post(f"/api/photos/{p3}/not-me")
    assert response.status_code == 204
    assert p3 not in my_ids(guest)
    assert guest.delete(f"/api/photos/{p3}/not-me").status_code == 204
    assert my_ids(guest) == {p0, p3}


def test_thats_me_with_one_face_needs_no_face_id(guest: Any, event_photos: dict[str, Photo]) -> None:
    p1 = event_photos["p1.png"].pk
    assert guest.post(f"/api/photos/{p1}/me", {}, format="json").status_code == 204
    assert p1 in my_ids(guest)


def test_thats_me_with_several_faces_asks_which(guest: Any, event_photos: dict[str, Photo]) -> None:
    p2 = event_photos["p2.png"]
    response = guest.post(f"/api/photos/{p2.pk}/me", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"]
    faces = {face["id"] for face in body["faces"]}
    assert faces == set(Face.objects.filter(photo=p2).values_list("pk", flat=True))
    assert set(body["faces"][0]["box"]) == {"left", "top", "width", "height"}

    chosen = sorted(faces)[1]
    assert guest.post(f"/api/photos/{p2.pk}/me", {"face_id": chosen}, format="json").status_code == 204
    assert Match.objects.get(photo=p2, user__username="attendee").face_id == chosen


@pytest.mark.parametrize("face_id", ["abc", -1, True, "1.5"])
def test_a_bad_face_id_is_a_400(guest: Any, event_photos: dict[str, Photo], face_id: Any) -> None:
    response = guest.post(f"/api/photos/{event_photos['p2.png'].pk}/me", {"face_id": face_id}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_face_of_another_photo_is_a_400(guest: Any, event_photos: dict[str, Photo]) -> None:
    other = Face.objects.filter(photo=event_photos["p1.png"]).first()
    assert other is not None
    response = guest.post(f"/api/photos/{event_photos['p2.png'].pk}/me", {"face_id": other.pk}, format="json")
    assert response.status_code == 400


def test_only_guests_who_see_the_photo_may_correct(
    client_for: Any, make_user: Any, photographer: Any, event: Any, event_photos: dict[str, Photo], anon_client: Any
) -> None:
    photo = event_photos["p1.png"].pk
    stranger = client_for(make_user("stranger"))
    owner = client_for(photographer)
    for method, path in (("post", "not-me"), ("delete", "not-me"), ("post", "me")):
        assert getattr(stranger, method)(f"/api/photos/{photo}/{path}").status_code == 404
        assert getattr(stranger, method)(f"/api/photos/999999/{path}").status_code == 404
        # The photographer sees the photo but is not a guest of the event.
        assert getattr(owner, method)(f"/api/photos/{photo}/{path}").status_code == 403
        assert getattr(anon_client, method)(f"/api/photos/{photo}/{path}").status_code in (401, 403)
    assert not Match.objects.filter(user__username="stranger").exists()


def test_a_guest_without_consent_is_refused(client_for: Any, make_user: Any, event: Any, event_photos: dict) -> None:
    shy = make_user("shy", consent=False)
    Membership.objects.create(user=shy, event=event)
    response = client_for(shy).post(f"/api/photos/{event_photos['p1.png'].pk}/me")
    assert response.status_code == 403
    assert response.json()["detail"]


def test_own_photos_events_keep_hidden_photos_undoable(guest: Any, event: Any, event_photos: dict[str, Photo]) -> None:
    event.visibility = EventVisibility.OWN
    event.save()
    event.bump_version()
    # Such events show a guest their photos once their selfie passed the live check.
    Selfie.objects.filter(user__username="attendee").update(live_verified_at=timezone.now())
    p1, p3 = event_photos["p1.png"].pk, event_photos["p3.png"].pk
    # A photo the guest is not in stays unknown to them.
    assert guest.post(f"/api/photos/{p1}/me").status_code == 404
    assert guest.post(f"/api/photos/{p3}/not-me").status_code == 204
    assert p3 not in my_ids(guest)
    assert guest.delete(f"/api/photos/{p3}/not-me").status_code == 204
    assert p3 in my_ids(guest)


def test_my_photos_lists_the_face_and_its_thumbnail(guest: Any, event_photos: dict[str, Photo]) -> None:
    photos = guest.get("/api/my-photos").json()["photos"]
    for item in photos:
        match = Match.objects.get(photo_id=item["id"], user__username="attendee")
        assert item["face_id"] == match.face_id
        assert item["face_thumbnail_url"].endswith(f"/media/photos/{item['id']}/faces/{match.face_id}")
        assert guest.get(item["face_thumbnail_url"]).status_code == 200
