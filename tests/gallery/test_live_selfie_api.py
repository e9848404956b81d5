"""The live selfie API, and what a guest of an "own photos only" event sees before and after it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from gallery.models import EventVisibility, Selfie
from processing import liveness
from processing.liveness import Pose
from processing.pipeline import enrol_selfie
from tests.conftest import jpeg_upload, png_upload
from tests.fakes import scene_png
from tests.processing.test_liveness import PAUL_FRONT, PAUL_LEFT, PAUL_RIGHT, portrait
from testsupport.media import media_answer
from testsupport.paths import FACES_DIR

pytestmark = pytest.mark.django_db

CHALLENGE, LIVE = "/api/me/selfie/challenge", "/api/me/selfie/live"


def frame(data: bytes, number: int) -> SimpleUploadedFile:
    return SimpleUploadedFile(f"frame-{number}.jpg", data, content_type="image/jpeg")


@pytest.fixture
def faces_lfw() -> Any:
    path = FACES_DIR.parent / "faces-lfw"
    if not (path / "manifest.json").exists():
        pytest.skip(f"LFW portraits not found at {path} (next to PHOTOEVENT_FACES_DIR)")
    return path


def test_a_challenge_names_the_poses_and_its_expiry(client_for, attendee, anon_client):
    response = client_for(attendee).post(CHALLENGE)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"nonce", "poses", "instructions", "expires_at"}
    assert body["poses"][0] == "front" and 3 <= len(body["poses"]) <= 4
    expires_in = (timezone.datetime.fromisoformat(body["expires_at"]) - timezone.now()).total_seconds()
    assert 50 < expires_in <= 60
    assert anon_client.post(CHALLENGE).status_code == 401


def test_a_live_check_needs_consent(client_for, make_user):
    stranger = make_user("no-consent", consent=False)
    response = client_for(stranger).post(CHALLENGE)
    assert response.status_code == 400
    assert "Agree to face matching" in response.json()["detail"]


def test_a_still_sent_for_every_pose_is_refused_and_the_nonce_spent(client_for, attendee, faces_dir):
    client = client_for(attendee)
    body = client.post(CHALLENGE).json()
    still = portrait(faces_dir, "joe_biden/1.jpg")
    frames = [frame(still, n) for n in range(1, len(body["poses"]) + 1)]
    response = client.post(LIVE, {"nonce": body["nonce"], "frames": frames}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Pictures 1 and 2 are the same image. Take each picture live, as instructed.",
        "code": "duplicate_frames",
        "frame": 2,
    }
    frames = [frame(still, n) for n in range(1, len(body["poses"]) + 1)]
    again = client.post(LIVE, {"nonce": body["nonce"], "frames": frames}, format="multipart")
    assert (again.status_code, again.json()["code"]) == (400, "challenge_used")
    assert not Selfie.objects.filter(user=attendee).exists()


def test_bad_requests_get_a_clear_400(client_for, attendee):
    client = client_for(attendee)
    nonce = client.post(CHALLENGE).json()["nonce"]
    cases = [
        ({"frames": [jpeg_upload()]}, "nonce"),
        ({"nonce": nonce}, "frames"),
        ({"nonce": nonce, "frames": [jpeg_upload(f"{n}.jpg") for n in range(5)]}, "frames"),
        ({"nonce": "forged", "frames": [jpeg_upload()]}, "not valid"),
    ]
    for data, words in cases:
        response = client.post(LIVE, data, format="multipart")
        assert response.status_code == 400, data
        assert words in response.json()["detail"]


def test_attempts_are_throttled(client_for, attendee, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "live-selfie": "2/m"}
    client = client_for(attendee)
    assert [client.post(CHALLENGE).status_code for _ in range(3)] == [200, 200, 429]
    statuses = [client.post(LIVE, {"nonce": "x", "frames": [jpeg_upload()]}).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_one_person_turning_as_asked_gets_a_live_verified_selfie(client_for, attendee, faces_lfw, monkeypatch):
    # The poses stay random; only "up" is left out, for want of a portrait of him looking up.
    monkeypatch.setattr(liveness, "CHALLENGE_POSES", (Pose.LEFT, Pose.RIGHT))
    monkeypatch.setattr(liveness, "MAX_POSES", 2)
    by_pose = {"front": PAUL_FRONT, "left": PAUL_LEFT, "right": PAUL_RIGHT}
    client = client_for(attendee)
    body = client.post(CHALLENGE).json()
    frames = [frame(portrait(faces_lfw, by_pose[pose]), n) for n, pose in enumerate(body["poses"], 1)]
    response = client.post(LIVE, {"nonce": body["nonce"], "frames": frames}, format="multipart")
    assert (response.status_code, response.json()) == (200, {"verified": True})
    assert Selfie.objects.get(user=attendee).live_verified_at is not None


def test_an_own_photos_event_shows_a_still_selfie_nothing(
    client_for, page_client, member, event, event_photos, fake_backend
):
    event.visibility = EventVisibility.OWN
    event.save()
    event.bump_version()
    enrol_selfie(member, png_upload("me.png", scene_png([0])))
    api, pages = client_for(member), page_client(member)
    mine = [event_photos["p0.png"], event_photos["p3.png"]]

    body = api.get(f"/api/my-photos?event={event.pk}").json()
    assert (body["photos"], body["live_selfie_required"]) == ([], True)
    assert api.get(f"/api/all-photos?event={event.pk}").json()["results"] == []
    page = pages.get(f"/events/{event.pk}/")
    assert "Verify with your camera" in page.content.decode() and not page.context["matches"]
    page = pages.get(f"/events/{event.pk}/all/")
    assert "Verify with your camera" in page.content.decode() and not list(page.context["page"])
    for photo in mine:
        assert pages.get(f"/photos/{photo.pk}/").status_code == 404
        assert pages.get(f"/media/photos/{photo.pk}/thumbnail").status_code == 404
    assert pages.get(f"/events/{event.pk}/my-photos.zip").status_code == 302

    Selfie.objects.filter(user=member).update(live_verified_at=timezone.now())
    body = api.get(f"/api/my-photos?event={event.pk}").json()
    assert body["live_selfie_required"] is False
    assert {p["id"] for p in body["photos"]} == {photo.pk for photo in mine}
    assert pages.get(f"/photos/{mine[0].pk}/").status_code == 200
    assert media_answer(pages.get(f"/media/photos/{mine[0].pk}/thumbnail")).status == 200
    assert pages.get(f"/events/{event.pk}/my-photos.zip").status_code == 200
    assert "Verify with your camera" not in pages.get(f"/events/{event.pk}/all/").content.decode()

    # A new still selfie replaces the live one: hidden again.
    enrol_selfie(member, png_upload("me-again.png", scene_png([0])))
    assert api.get(f"/api/my-photos?event={event.pk}").json()["photos"] == []
    assert pages.get(f"/media/photos/{mine[0].pk}/thumbnail").status_code == 404
