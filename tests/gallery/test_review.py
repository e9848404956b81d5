""" "Is this you?": the guest's doubtful matches on my photos, as a page and in the API, and the answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from gallery import access
from gallery.models import Event, EventVisibility, Face, Match, Photo, Selfie

pytestmark = pytest.mark.django_db


@pytest.fixture
def doubtful(settings: Any) -> None:
    # The scene's look-alike is 0.38 from the selfie, the guest's own faces 0.2.
    settings.FACE_REVIEW_DISTANCE = 0.3


def test_my_photos_asks_about_the_look_alike_and_not_me_clears_both_of_his_photos(
    doubtful: None, photos: dict[str, Photo], member: User, event: Event, page_client: Any
) -> None:
    client = page_client(member)
    mine_url = reverse("gallery-my-photos", args=[event.pk])
    page = client.get(mine_url).content.decode()
    assert "Is this you?" in page
    x1, x2 = photos["x1.png"], photos["x2.png"]
    for photo in (x1, x2):
        face = Face.objects.get(photo=photo)
        assert reverse("gallery-photo-face", args=[photo.pk, face.pk]) in page
        assert f'name="face_id" value="{face.pk}"' in page
    assert reverse("gallery-photo-face", args=[photos["a1.png"].pk, Face.objects.get(photo=photos["a1.png"]).pk]) in (
        page
    )  # in the grid, not asked about
    assert page.count('name="review"') == 2

    response = client.post(reverse("gallery-photo-not-me", args=[x1.pk]), {"next": mine_url})
    assert response.status_code == 302 and response["Location"] == mine_url
    page = client.get(mine_url).content.decode()
    assert "Is this you?" not in page
    assert not Match.objects.filter(user=member, photo__in=[x1, x2]).exists()


def test_yes_keeps_the_photo_and_it_is_not_asked_about_again(
    doubtful: None, photos: dict[str, Photo], member: User, event: Event, page_client: Any
) -> None:
    client = page_client(member)
    mine_url = reverse("gallery-my-photos", args=[event.pk])
    x1 = photos["x1.png"]
    face = Face.objects.get(photo=x1)
    response = client.post(
        reverse("gallery-photo-me", args=[x1.pk]), {"face_id": face.pk, "review": "1", "next": mine_url}, follow=True
    )
    page = response.content.decode()
    assert "the photo is in your photos." in page
    assert Match.objects.filter(user=member, photo=x1, face=face).exists()
    assert page.count('name="review"') == 1  # x2 only


def test_the_api_lists_the_photos_to_review(
    doubtful: None, photos: dict[str, Photo], member: User, event: Event, client_for: Any
) -> None:
    api = client_for(member)
    body = api.get(reverse("api-my-photos"), {"event": event.pk}).json()
    assert [item["photo_id"] for item in body["review"]] == [photos["x1.png"].pk, photos["x2.png"].pk]
    first = body["review"][0]
    assert first["face_id"] == Face.objects.get(photo=photos["x1.png"]).pk
    assert first["face_thumbnail_url"].endswith(
        reverse("gallery-photo-face", args=[first["photo_id"], first["face_id"]])
    )

    wrong_face = Face.objects.get(photo=photos["a1.png"]).pk
    refused = api.post(reverse("api-photo-not-me", args=[first["photo_id"]]), {"face_id": wrong_face})
    assert refused.status_code == 400 and refused.json()["detail"] == "That face is not in this photo"
    assert Match.objects.filter(user=member, photo_id=first["photo_id"]).exists()

    api.post(reverse("api-photo-not-me", args=[first["photo_id"]]), {"face_id": first["face_id"]})
    assert api.get(reverse("api-my-photos"), {"event": event.pk}).json()["review"] == []


def test_my_photos_page_in_french(
    doubtful: None, photos: dict[str, Photo], member: User, event: Event, page_client: Any
) -> None:
    client = page_client(member)
    page = client.get(reverse("gallery-my-photos", args=[event.pk]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Est-ce vous" in page and "Oui, c'est moi" in page


def test_an_own_photos_event_asks_only_about_the_guests_own_matches(
    photos: dict[str, Photo], member: User, event: Event, settings: Any
) -> None:
    # z, beside y1 and 0.71 from the selfie, is matched to nobody: asked about where guests see every photo.
    settings.FACE_REVIEW_DISTANCE = 0.3
    settings.FACE_REVIEW_MISSED_DISTANCE = 0.75
    asked = [photo for photo, _ in access.photos_to_review(member, event)]
    assert asked == [photos["x1.png"].pk, photos["x2.png"].pk, photos["y1.png"].pk]

    event.visibility = EventVisibility.OWN
    event.save()
    Selfie.objects.filter(user=member).update(live_verified_at=timezone.now())
    own_only = {photo for photo, _ in access.photos_to_review(member, event)}
    assert own_only == {photos["x1.png"].pk, photos["x2.png"].pk}
