"""The account endpoints of the API: deleting face data or the account as the pages do; consent only with a selfie."""

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.models import ApiToken, AttendeeProfile, Match, Membership, Selfie, profile_for
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db

PASSWORD = "Pass-word-1234"


def enrol(client):
    response = client.post("/api/me/selfie", {"selfie": selfie_file([0])}, format="multipart")
    assert response.status_code == 200, response.content
    return response


def test_delete_face_data_removes_selfies_matches_and_consent(client_for, member, event, event_photos):
    client = client_for(member)
    enrol(client)
    assert Match.objects.filter(user=member).exists()
    response = client.delete("/api/me/face-data")
    assert response.status_code == 200
    assert response.json()["deleted"]["selfies"] == 1
    assert response.json()["deleted"]["matches"] >= 1
    assert not Selfie.objects.filter(user=member).exists()
    assert not Match.objects.filter(user=member).exists()
    assert not profile_for(member).has_consented
    assert Membership.objects.filter(user=member).exists(), "the account stays"


def test_delete_account_needs_the_password(client_for, member, event, event_photos):
    client = client_for(member)
    enrol(client)
    missing = client.delete("/api/me")
    wrong = client.delete("/api/me", {"password": "wrong"}, format="json")
    assert (missing.status_code, wrong.status_code) == (400, 400)
    assert "password" in missing.json()["detail"]
    assert User.objects.filter(pk=member.pk).exists()


def test_delete_account_removes_face_data_account_and_tokens(client_for, member, event, event_photos):
    client = client_for(member)
    enrol(client)
    response = client.delete("/api/me", {"password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert response.json()["deleted"]["account"] == "attendee"
    assert response.json()["deleted"]["selfies"] == 1
    assert not User.objects.filter(pk=member.pk).exists()
    assert not Selfie.objects.filter(user_id=member.pk).exists()
    assert not ApiToken.objects.filter(user_id=member.pk).exists()
    assert client.get("/api/my-photos").status_code == 401


def test_an_account_without_a_password_is_deleted_without_one(client_for, attendee):
    attendee.set_unusable_password()
    attendee.save()
    response = client_for(attendee).delete("/api/me")
    assert response.status_code == 200
    assert not User.objects.filter(pk=attendee.pk).exists()


def test_a_photographer_with_events_is_told_to_delete_them_first(client_for, photographer, event):
    response = client_for(photographer).delete("/api/me", {"password": PASSWORD}, format="json")
    assert response.status_code == 409
    assert "events" in response.json()["detail"]
    assert User.objects.filter(pk=photographer.pk).exists()


@pytest.mark.parametrize(
    "upload",
    [
        lambda: SimpleUploadedFile("me.png", b"not an image", content_type="image/png"),
        lambda: selfie_file([]),  # an image without a face
    ],
    ids=["not-an-image", "no-face"],
)
def test_a_refused_selfie_records_no_consent(client_for, make_user, fake_backend, upload):
    shy = make_user("shy", consent=False)
    response = client_for(shy).post("/api/me/selfie", {"selfie": upload()}, format="multipart")
    assert response.status_code == 400
    assert AttendeeProfile.objects.get(user=shy).face_consent_at is None


def test_an_accepted_selfie_records_consent(client_for, make_user, fake_backend):
    shy = make_user("shy", consent=False)
    enrol(client_for(shy))
    assert AttendeeProfile.objects.get(user=shy).face_consent_at is not None


def test_the_page_deletes_an_account_without_a_password_without_asking_for_one(attendee, client):
    attendee.set_unusable_password()
    attendee.save()
    client.force_login(attendee)
    assert b'name="password"' not in client.get("/me/delete-account/").content
    assert client.post("/me/delete-account/").status_code == 302
    assert not User.objects.filter(pk=attendee.pk).exists()
