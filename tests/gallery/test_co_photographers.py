"""Co-photographers: the owner adds photographers to an event; they upload and follow it, never change it."""

from __future__ import annotations

import pytest

from gallery.models import CoPhotographer, Event, Photo
from tests.conftest import jpeg_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def co_photographer(make_user, event):
    user = make_user("second-shooter", photographer=True)
    CoPhotographer.objects.create(event=event, user=user)
    return user


def upload(client, event, files):
    return client.post(f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart")


def test_a_co_photographer_can_upload_but_cannot_delete_the_event(client_for, co_photographer, event):
    client = client_for(co_photographer)
    response = upload(client, event, [jpeg_upload("second.jpg")])
    assert response.status_code == 202
    assert Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"]).uploaded_by == co_photographer

    refused = client.delete(f"/api/photographer/events/{event.pk}")
    assert refused.status_code == 403
    assert "photographer" in refused.json()["detail"]
    assert Event.objects.filter(pk=event.pk).exists()


def test_a_co_photographer_sees_progress_and_photos(client_for, co_photographer, event):
    upload(client_for(co_photographer), event, [jpeg_upload("second.jpg")])
    client = client_for(co_photographer)
    assert client.get(f"/api/photographer/events/{event.pk}").json()["photos"]["total"] == 1
    assert client.get(f"/api/photographer/events/{event.pk}/photos").json()["count"] == 1
    listed = client.get("/api/photographer/events").json()["results"]
    assert [e["id"] for e in listed] == [event.pk]


def test_the_owner_adds_and_removes_a_photographer(client_for, photographer, other_photographer, event):
    owner = client_for(photographer)
    url = f"/api/photographer/events/{event.pk}/photographers"
    assert upload(client_for(other_photographer), event, [jpeg_upload()]).status_code == 404

    added = owner.post(url, {"username": "Other-Photographer"}, format="json")
    assert added.status_code == 201
    assert added.json()["username"] == "other-photographer"
    assert owner.post(url, {"username": "other-photographer"}, format="json").status_code == 200
    assert owner.get(url).json()["results"][0]["username"] == "other-photographer"
    assert upload(client_for(other_photographer), event, [jpeg_upload()]).status_code == 202

    assert owner.delete(f"{url}/other-photographer").status_code == 204
    assert owner.delete(f"{url}/other-photographer").status_code == 404
    # Removed: the event is unknown to them again, at once; their photo stays.
    assert upload(client_for(other_photographer), event, [jpeg_upload("b.jpg", colour=(1, 2, 3))]).status_code == 404
    assert Photo.objects.filter(event=event, uploaded_by=other_photographer).count() == 1


@pytest.mark.parametrize(
    ("username", "message"),
    [("nobody", "No photographer"), ("attendee", "No photographer"), ("photographer", "owner")],
)
def test_adding_someone_who_cannot_be_added_is_400(client_for, photographer, attendee, event, username, message):
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/photographers", {"username": username}, format="json"
    )
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_missing_username_is_400(client_for, photographer, event):
    response = client_for(photographer).post(f"/api/photographer/events/{event.pk}/photographers", {}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()["detail"]


def test_a_co_photographer_cannot_change_the_photographers(client_for, co_photographer, other_photographer, event):
    client = client_for(co_photographer)
    url = f"/api/photographer/events/{event.pk}/photographers"
    assert client.post(url, {"username": other_photographer.username}, format="json").status_code == 403
    assert client.delete(f"{url}/{co_photographer.username}").status_code == 403


def test_studio_page_for_a_co_photographer(page_client, co_photographer, photographer, event, client_for):
    upload(client_for(co_photographer), event, [jpeg_upload("mine.jpg")])
    upload(client_for(photographer), event, [jpeg_upload("owner.jpg", colour=(5, 5, 5))])
    client = page_client(co_photographer)
    page = client.get(f"/studio/events/{event.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "second-shooter" in html and "mine.jpg" in html
    figures = page.context["per_photographer"]
    assert {row["username"]: row["total"] for row in figures} == {"second-shooter": 1, "photographer": 1}
    assert f"/studio/events/{event.pk}/delete/" not in html
    assert f"/studio/events/{event.pk}/visibility/" not in html
    assert client.post(f"/studio/events/{event.pk}/visibility/", {"visibility": "own"}).status_code == 403
    assert client.post(f"/studio/events/{event.pk}/delete/").status_code == 403
    assert Event.objects.get(pk=event.pk).visibility == "all"
    assert client.get("/studio/").context["events"][0] == event


def test_the_owner_manages_photographers_from_the_studio_page(page_client, photographer, other_photographer, event):
    client = page_client(photographer)
    response = client.post(f"/studio/events/{event.pk}/photographers/", {"username": "other-photographer"})
    assert response.status_code == 302
    assert CoPhotographer.objects.filter(event=event, user=other_photographer).exists()
    page = client.get(f"/studio/events/{event.pk}/").content.decode()
    assert f"/studio/events/{event.pk}/photographers/other-photographer/remove/" in page
    refused = client.post(f"/studio/events/{event.pk}/photographers/", {"username": "nobody"}, follow=True)
    assert "No photographer with the username nobody" in refused.content.decode()
    client.post(f"/studio/events/{event.pk}/photographers/other-photographer/remove/")
    assert not CoPhotographer.objects.filter(event=event).exists()


def test_a_co_photographer_who_owns_no_event_may_delete_their_account(page_client, co_photographer):
    page = page_client(co_photographer).get("/me/delete-account/")
    assert page.context["owns_events"] is False
