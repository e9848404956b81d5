"""The studio's matching-quality page: the report's numbers, for the event's owner only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from gallery.models import CorrectionKind, Face, MatchCorrection, Membership

pytestmark = pytest.mark.django_db


def test_the_owner_sees_the_faces_found_and_matched(page_client, photographer, event_photos):
    event_id = event_photos["p0.png"].event_id
    page = page_client(photographer).get(reverse("gallery-studio-event-quality", args=[event_id]))
    assert page.status_code == 200
    report = page.context["report"]
    assert report["faces_found"] == Face.objects.filter(event_id=event_id).count() > 0
    body = page.content.decode()
    assert f"<dd>{report['faces_found']}</dd>" in body
    assert "Faces too small or blurry to match" in body
    studio = page_client(photographer).get(reverse("gallery-studio-event", args=[event_id])).content.decode()
    assert reverse("gallery-studio-event-quality", args=[event_id]) in studio


def test_a_member_may_not_and_another_photographer_may_not_know(
    page_client, attendee, other_photographer, event_photos
):
    event_id = event_photos["p0.png"].event_id
    Membership.objects.create(user=attendee, event_id=event_id)
    url = reverse("gallery-studio-event-quality", args=[event_id])
    assert page_client(attendee).get(url).status_code == 403
    assert page_client(other_photographer).get(url).status_code == 404


def test_the_owner_sees_the_guests_answers(page_client, photographer, attendee, event_photos):
    photo = event_photos["p0.png"]
    MatchCorrection.objects.create(user=attendee, event_id=photo.event_id, photo=photo, kind=CorrectionKind.NOT_ME)
    url = reverse("gallery-studio-event-quality", args=[photo.event_id])

    body = page_client(photographer).get(url).content.decode()
    assert "0 “that's me”, 1 “not me”, from 1 guest<" in body
    french = page_client(photographer).get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "0 « c'est moi », 1 « pas moi », de 1 invité<" in french
