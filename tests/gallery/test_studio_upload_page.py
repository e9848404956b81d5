"""The studio's upload form without JavaScript: the same upload code as the API, answered on the page."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.models import CoPhotographer, Photo
from tests.conftest import jpeg_upload
from tests.fakes import scene_png
from testsupport.heic import heic_bytes

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_event_page_has_a_plain_multiple_file_form(page_client, photographer, event):
    html = page_client(photographer).get(f"/studio/events/{event.pk}/").content.decode()
    assert f'action="/studio/events/{event.pk}/upload/"' in html
    assert 'enctype="multipart/form-data"' in html
    assert 'name="photos" multiple' in html and "image/heic" in html
    assert f'data-api-url="/api/photographer/events/{event.pk}/upload-photos"' in html
    assert 'id="upload-texts" hidden data-waiting="Waiting"' in html
    assert "<script>" not in html and "style=" not in html


def test_files_posted_without_javascript_are_stored_and_answered(page_client, photographer, event):
    files = [
        jpeg_upload("a.jpg"),
        SimpleUploadedFile("b.heic", heic_bytes(scene_png([0])), content_type="image/heic"),
        SimpleUploadedFile("notes.jpg", b"not a photo at all" * 20, content_type="image/jpeg"),
    ]
    response = page_client(photographer).post(f"/studio/events/{event.pk}/upload/", {"photos": files}, follow=True)
    assert response.redirect_chain[-1][0] == f"/studio/events/{event.pk}/"
    texts = messages_of(response)
    assert "2 photos received." in texts
    assert any(t.startswith("notes.jpg refused: The file is not an image") for t in texts)
    assert sorted(Photo.objects.filter(event=event).values_list("filename", flat=True)) == ["a.jpg", "b.heic"]
    assert "b.heic" in response.content.decode(), "the page lists what arrived"

    again = page_client(photographer).post(f"/studio/events/{event.pk}/upload/", {"photos": [jpeg_upload("a.jpg")]})
    assert again.status_code == 302
    assert Photo.objects.filter(event=event).count() == 2


def test_nothing_acceptable_is_a_400_page_with_the_reason(page_client, photographer, event):
    client = page_client(photographer)
    empty = client.post(f"/studio/events/{event.pk}/upload/", {})
    assert empty.status_code == 400
    assert "Choose one or more photos to send." in messages_of(empty)
    bad = SimpleUploadedFile("x.jpg", b"", content_type="image/jpeg")
    refused = client.post(f"/studio/events/{event.pk}/upload/", {"photos": [bad]})
    assert refused.status_code == 400
    assert "x.jpg refused: The file is empty" in messages_of(refused)


def test_a_full_queue_is_a_503_page_with_retry_after(page_client, photographer, event, settings):
    settings.PHOTO_QUEUE_MAX_SIZE = 1
    files = [jpeg_upload("a.jpg"), jpeg_upload("b.jpg", colour=(1, 2, 3))]
    response = page_client(photographer).post(f"/studio/events/{event.pk}/upload/", {"photos": files})
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert not Photo.objects.exists()


def test_who_may_upload_from_the_page(page_client, make_user, other_photographer, member, event):
    co = make_user("second-shooter", photographer=True)
    CoPhotographer.objects.create(event=event, user=co)
    url = f"/studio/events/{event.pk}/upload/"
    assert page_client(co).post(url, {"photos": [jpeg_upload()]}).status_code == 302
    assert page_client(other_photographer).post(url, {"photos": [jpeg_upload("o.jpg")]}).status_code == 404
    assert page_client(member).post(url, {"photos": [jpeg_upload("m.jpg")]}).status_code == 403
    assert Photo.objects.filter(event=event).count() == 1
