"""The photographer's event page: visibility setting, deleting photos and events."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from gallery.models import Event, EventVisibility, Face, Match, Membership, Photo
from processing.backends.base import TransientBackendError

pytestmark = pytest.mark.django_db


def studio_url(event):
    return reverse("gallery-studio-event", args=[event.pk])


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args) -> None:
        self.calls.append(args)


@pytest.fixture
def recorded(monkeypatch, fake_backend):
    """The backend's forget_* calls, recorded (the fake backend keeps nothing outside the database)."""
    calls = {name: Recorder() for name in ("forget_faces", "forget_event", "forget_selfie")}
    for name, recorder in calls.items():
        monkeypatch.setattr(fake_backend, name, recorder)
    return calls


def test_photographer_sets_visibility_and_guests_see_the_difference(
    page_client, photographer, member, event, event_photos
):
    studio = page_client(photographer)
    page = studio.get(studio_url(event)).content.decode()
    assert 'value="all"' in page and 'value="own"' in page and "What guests can browse" in page
    guest = page_client(member)
    all_url = reverse("gallery-all-photos", args=[event.pk])
    assert guest.get(all_url).content.decode().count('loading="lazy"') == 4
    response = studio.post(
        reverse("gallery-studio-event-visibility", args=[event.pk]), {"visibility": "own"}, follow=True
    )
    assert "Saved: guests see only their own photos." in response.content.decode()
    event.refresh_from_db()
    assert event.visibility == EventVisibility.OWN
    assert guest.get(all_url).content.decode().count('loading="lazy"') == 0
    assert guest.get("/api/all-photos").json()["count"] == 0


def test_visibility_rejects_unknown_values_and_strangers(page_client, photographer, other_photographer, event):
    url = reverse("gallery-studio-event-visibility", args=[event.pk])
    page_client(photographer).post(url, {"visibility": "everyone"})
    assert page_client(other_photographer).post(url, {"visibility": "own"}).status_code == 404
    assert page_client(photographer).get(url).status_code == 405
    event.refresh_from_db()
    assert event.visibility == EventVisibility.ALL


def test_deleting_a_photo_takes_its_faces_matches_and_files(
    page_client, photographer, member, event, event_photos, recorded, django_capture_on_commit_callbacks
):
    from processing.pipeline import enrol_selfie
    from tests.gallery.conftest import selfie_file

    enrol_selfie(member, selfie_file([0]))
    photo = event_photos["p0.png"]
    assert Match.objects.filter(photo=photo, user=member).exists()
    Face.objects.filter(photo=photo).update(external_id="ext")  # as a backend that stores faces would
    files = [photo.original.name, photo.thumbnail.name, photo.web.name]
    url = reverse("gallery-studio-photo-delete", args=[photo.pk])
    studio = page_client(photographer)
    confirm = studio.get(url).content.decode()
    assert "Delete this photo?" in confirm and "p0.png" in confirm and "2 faces" in confirm
    assert Photo.objects.filter(pk=photo.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = studio.post(url, follow=True)
    assert "Deleted p0.png and its faces." in response.content.decode()
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not Face.objects.filter(photo_id=photo.pk).exists()
    assert not Match.objects.filter(photo_id=photo.pk).exists()
    assert not any(default_storage.exists(name) for name in files)
    assert len(recorded["forget_faces"].calls) == 1
    forgotten_event, faces = recorded["forget_faces"].calls[0]
    assert forgotten_event.pk == event.pk and len(faces) == 2
    assert Photo.objects.filter(event=event).count() == 3


def test_a_backend_failure_after_the_deletion_is_retried_by_the_queue(
    page_client, photographer, event, event_photos, monkeypatch, fake_backend, django_capture_on_commit_callbacks
):
    # The backend is called after the commit, never inside the transaction:
    # the photo goes at once, and the queue asks the backend again later.
    from processing import tasks

    photo = event_photos["p0.png"]
    Face.objects.filter(photo=photo).update(external_id="ext")
    scheduled = []
    monkeypatch.setattr(tasks, "schedule", lambda *args, **kwargs: scheduled.append(args))

    def fail(*args):
        raise TransientBackendError("timeout")

    monkeypatch.setattr(fake_backend, "forget_faces", fail)
    with django_capture_on_commit_callbacks(execute=True):
        page_client(photographer).post(reverse("gallery-studio-photo-delete", args=[photo.pk]), follow=True)
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert scheduled == [(tasks.FORGET_FACES, event.pk, ["ext", "ext"], 1)]


def test_deleting_the_event_takes_everything_with_it(
    page_client, photographer, member, event, event_photos, recorded, django_capture_on_commit_callbacks
):
    files = [p.original.name for p in event_photos.values()] + [p.web.name for p in event_photos.values()]
    url = reverse("gallery-studio-event-delete", args=[event.pk])
    studio = page_client(photographer)
    confirm = studio.get(url).content.decode()
    assert "Delete Wedding?" in confirm and "4 photos" in confirm and "1 guest" in confirm
    with django_capture_on_commit_callbacks(execute=True):
        response = studio.post(url, follow=True)
    assert "Deleted the event Wedding" in response.content.decode()
    assert not Event.objects.filter(pk=event.pk).exists()
    assert not Photo.objects.exists() and not Face.objects.exists() and not Membership.objects.exists()
    assert not any(default_storage.exists(name) for name in files)
    assert len(recorded["forget_event"].calls) == 1
    # The whole collection goes at once, not face by face.
    assert recorded["forget_faces"].calls == []


@pytest.mark.parametrize(
    ("who", "status"),
    [
        # Another photographer may not know the event exists; a guest knows it but may not change it.
        ("other_photographer", 404),
        ("member", 403),
    ],
)
def test_only_the_owner_deletes(request, page_client, event, event_photos, who, status):
    outsider = page_client(request.getfixturevalue(who))
    photo = event_photos["p1.png"]
    assert outsider.post(reverse("gallery-studio-photo-delete", args=[photo.pk])).status_code == status
    assert outsider.post(reverse("gallery-studio-event-delete", args=[event.pk])).status_code == status
    assert outsider.get(studio_url(event)).status_code == status
    assert Photo.objects.filter(pk=photo.pk).exists() and Event.objects.filter(pk=event.pk).exists()


def test_studio_event_page_lists_photos_with_delete_links(page_client, photographer, event, event_photos):
    body = page_client(photographer).get(studio_url(event)).content.decode()
    for photo in event_photos.values():
        assert reverse("gallery-studio-photo-delete", args=[photo.pk]) in body
    assert reverse("gallery-studio-event-delete", args=[event.pk]) in body
