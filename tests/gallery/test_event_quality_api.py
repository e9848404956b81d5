"""The photographer's quality report and the refusal of an unusable selfie, through the API."""

import pytest

from processing.backends.base import UnusableSelfie
from tests.conftest import png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


def test_the_owner_gets_the_event_quality_report(client_for, photographer, event):
    response = client_for(photographer).get(f"/api/photographer/events/{event.pk}/quality")

    assert response.status_code == 200
    assert response.json()["event"] == event.pk
    assert {"faces_found", "faces_matched", "faces_unclaimed", "faces_unusable", "weak_matches"} <= set(response.json())


def test_another_photographer_does_not_get_it(client_for, other_photographer, event):
    response = client_for(other_photographer).get(f"/api/photographer/events/{event.pk}/quality")

    assert response.status_code in (403, 404)


def test_an_unusable_selfie_is_a_400_that_says_what_to_fix(client_for, member, fake_backend, monkeypatch):
    def refuse(*args, **kwargs):
        raise UnusableSelfie("This selfie is blurry. Hold the phone still, in good light, and take it again.")

    monkeypatch.setattr(fake_backend, "enrol_selfie", refuse)

    response = client_for(member).post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "This selfie is blurry. Hold the phone still, in good light, and take it again."
    }
