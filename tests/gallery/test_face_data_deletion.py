"""Delete my face data, and delete my account: nothing of the attendee's face stays anywhere."""

from __future__ import annotations

import os

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from gallery.models import AttendeeProfile, Event, Match, Membership, Selfie
from processing.backends.base import TransientBackendError
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db

FACE_DATA = "/me/face-data/"


def enrolled(page_client, user, event, people=(0,)):
    client = page_client(user)
    client.post(reverse("gallery-selfie"), {"selfie": selfie_file(list(people)), "next": f"/events/{event.pk}/"})
    assert Match.objects.filter(user=user).exists()
    return client


@pytest.fixture
def forgotten_selfies(monkeypatch, fake_backend):
    """Selfie ids the backend was told to forget."""
    ids: list[int] = []
    original = fake_backend.forget_selfie

    def record(selfie):
        ids.append(selfie.pk)
        original(selfie)

    monkeypatch.setattr(fake_backend, "forget_selfie", record)
    return ids


def test_face_data_page_shows_what_is_stored(page_client, member, event, event_photos):
    client = enrolled(page_client, member, event)
    body = client.get(FACE_DATA).content.decode()
    assert "1 selfie with its face template" in body
    assert "2 photos in 1 event" in body
    assert "Delete my face data" in body


def test_delete_my_face_data_removes_selfie_template_matches_and_consent(
    page_client, member, event, event_photos, forgotten_selfies, django_capture_on_commit_callbacks
):
    client = enrolled(page_client, member, event)
    selfie = Selfie.objects.get(user=member)
    selfie_file_name = str(selfie.image.name)
    assert default_storage.exists(selfie_file_name)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(FACE_DATA, follow=True)
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == "/me/deleted/"
    assert "Your face data is deleted" in body
    assert "1 selfie (the photo of your face)" in body
    assert "1 face template, here and at the face-recognition service" in body
    assert "2 links to photos you were found in, in 1 event" in body
    assert "consent to face matching (withdrawn)" in body
    assert selfie.pk in forgotten_selfies
    assert not Selfie.objects.filter(user=member).exists()
    assert not Match.objects.filter(user=member).exists()
    assert not default_storage.exists(selfie_file_name)
    assert AttendeeProfile.objects.get(user=member).face_consent_at is None
    # The guest stays a member and can still browse; the photos are untouched.
    assert Membership.objects.filter(user=member, event=event).exists()
    assert client.get(f"/events/{event.pk}/all/").content.decode().count('loading="lazy"') == 4
    # The confirmation is shown once.
    assert client.get("/me/deleted/")["Location"] == "/"


def test_my_photos_are_empty_right_after_deletion_despite_the_cache(page_client, member, event, event_photos):
    client = enrolled(page_client, member, event)
    api = Client()
    api.force_login(member)
    assert len(api.get("/api/my-photos").json()["photos"]) == 2
    client.post(FACE_DATA)
    assert api.get("/api/my-photos").json()["photos"] == []


def test_a_backend_failure_says_so_and_keeps_the_data(
    page_client, member, event, event_photos, monkeypatch, fake_backend
):
    client = enrolled(page_client, member, event)

    def fail(selfie):
        raise TransientBackendError("timeout")

    monkeypatch.setattr(fake_backend, "forget_selfie", fail)
    response = client.post(FACE_DATA, follow=True)
    assert "did not answer" in response.content.decode()
    assert Selfie.objects.filter(user=member).exists()


def test_delete_account_needs_the_password_then_deletes_everything(
    page_client, member, event, event_photos, forgotten_selfies, django_capture_on_commit_callbacks
):
    client = enrolled(page_client, member, event)
    selfie = Selfie.objects.get(user=member)
    wrong = client.post("/me/delete-account/", {"password": "nope"})
    assert "That is not your password." in wrong.content.decode()
    assert Selfie.objects.filter(pk=selfie.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/me/delete-account/", {"password": "Pass-word-1234"}, follow=True)
    body = response.content.decode()
    assert "Your account is deleted" in body
    assert "1 selfie" in body and "1 face template" in body and "2 links" in body
    assert "1 event membership" in body and 'Your account "attendee"' in body
    assert selfie.pk in forgotten_selfies
    assert not Selfie.objects.exists() and not Match.objects.exists() and not Membership.objects.exists()
    assert not default_storage.exists(str(selfie.image.name))
    from django.contrib.auth.models import User

    assert not User.objects.filter(username="attendee").exists()
    assert "Log in" in client.get("/").content.decode()


def test_an_account_that_owns_events_is_not_deleted(page_client, photographer, event):
    client = page_client(photographer)
    assert "Delete them in the" in client.get("/me/delete-account/").content.decode()
    client.post("/me/delete-account/", {"password": "Pass-word-1234"})
    assert Event.objects.filter(pk=event.pk).exists()


# --- Rekognition: the selfie's faces leave every event collection ----------------------------------


@pytest.fixture
def aws(settings, monkeypatch, tmp_path):
    stubs = pytest.importorskip("tests.processing.aws_stubs")
    from processing import backends
    from processing.backends import rekognition

    settings.AWS_RETRY_BASE_DELAY = 0.0
    settings.FACE_LIMIT_LOCK_DIR = tmp_path / "locks"
    settings.REDIS_URL = ""
    stub = stubs.RekognitionStub(settings, monkeypatch)
    monkeypatch.setattr(rekognition, "_client", stub.client)
    monkeypatch.setattr(rekognition, "_client_pid", os.getpid())
    settings.FACE_BACKEND = "rekognition"
    backends.get_backend.cache_clear()
    yield stub
    backends.get_backend.cache_clear()


def test_delete_my_face_data_empties_the_rekognition_collections(page_client, aws, member, event, photographer):
    from django.core.files.base import ContentFile

    from processing.models import RekognitionSelfieFace

    other = Event.objects.create(owner=photographer, name="Party")
    Membership.objects.create(user=member, event=other)
    selfie = Selfie(user=member, external_id="selfie-ext", faces_found=1)
    selfie.image.save("s.jpg", ContentFile(b"\xff\xd8\xff fake"), save=True)
    RekognitionSelfieFace.objects.create(selfie=selfie, event=event, face_id="s-1")
    RekognitionSelfieFace.objects.create(selfie=selfie, event=other, face_id="s-2")
    # The attendee's user goes from each collection, then the selfie faces.
    aws.delete_user(event.pk, member.pk)
    aws.delete_user(other.pk, member.pk)
    aws.delete_faces(event.pk, ["s-1"])
    aws.delete_faces(other.pk, ["s-2"])
    response = page_client(member).post(FACE_DATA, follow=True)
    aws.done()
    assert "1 face template, here and at the face-recognition service" in response.content.decode()
    assert not RekognitionSelfieFace.objects.exists()
    assert not Selfie.objects.exists() and not Match.objects.filter(user=member).exists()
