"""How an access-checked media request is answered: streamed, handed to the proxy, or redirected to S3."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse

from gallery import access
from gallery.models import Event, EventVisibility, Membership, Photo, PhotoStatus
from processing.services import delete_event
from tests.gallery.conftest import selfie_file
from testsupport.media import media_answer

on_local_storage = pytest.mark.skipif(
    settings.STORAGE_BACKEND != "local", reason="local-file serving; S3 leg redirects"
)
on_s3 = pytest.mark.skipif(
    settings.STORAGE_BACKEND != "s3", reason="needs STORAGE_BACKEND=s3 and an S3 server (the S3 leg of .ci/run)"
)


def _served(answer: Any) -> bool:
    """Whether the file is handed out: to nginx (local files) or as a presigned redirect (S3)."""
    return bool(answer.status_code == 200 or (answer.status_code == 302 and answer["Location"].startswith("http")))


def _file_url(photo: Photo, variant: str) -> str:
    return reverse("gallery-photo-file", args=[photo.pk, variant])


@on_local_storage
def test_without_a_proxy_django_streams_the_file(page_client, photographer, event_photos):
    photo = event_photos["p0.png"]
    answer = page_client(photographer).get(_file_url(photo, "original"))
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == photo.original.open("rb").read()
    assert answer["Content-Disposition"].startswith("attachment")


@on_local_storage
def test_nginx_gets_the_internal_location_and_django_sends_no_bytes(page_client, photographer, event_photos, settings):
    settings.MEDIA_ACCEL = "nginx"
    photo = event_photos["p0.png"]
    original = page_client(photographer).get(_file_url(photo, "original"))
    assert original.status_code == 200
    assert original.content == b""
    assert original["X-Accel-Redirect"] == f"/protected-media/{photo.original.name}"
    assert original["Content-Disposition"] == 'attachment; filename="p0.png"'
    assert original["Content-Type"] == "image/png"
    web = page_client(photographer).get(_file_url(photo, "web"))
    assert web["X-Accel-Redirect"] == f"/protected-media/{photo.web.name}"
    assert web["Content-Type"] == "image/jpeg"
    assert "Content-Disposition" not in web


@on_local_storage
def test_sendfile_gets_the_path(page_client, photographer, event_photos, settings):
    settings.MEDIA_ACCEL = "sendfile"
    photo = event_photos["p1.png"]
    answer = page_client(photographer).get(_file_url(photo, "thumbnail"))
    assert answer["X-Sendfile"] == photo.thumbnail.path
    assert answer.content == b""


def test_no_access_is_a_404_before_any_file_is_named(page_client, attendee, event_photos, settings):
    settings.MEDIA_ACCEL = "nginx"
    answer = page_client(attendee).get(_file_url(event_photos["p0.png"], "original"))
    assert answer.status_code == 404
    assert "X-Accel-Redirect" not in answer
    assert "Location" not in answer


def test_a_guest_download_reads_the_photo_row_and_nothing_else(
    client_for, member, event_photos, settings, django_assert_num_queries
):
    """Each download starts with this check: the token, the event and the membership come from the cache."""
    settings.MEDIA_ACCEL = "nginx"
    guest = client_for(member)
    photo = event_photos["p1.png"]
    assert _served(guest.get(_file_url(photo, "web")))
    with django_assert_num_queries(1):
        answer = guest.get(_file_url(photo, "web"))
    if settings.STORAGE_BACKEND == "local":
        assert answer["X-Accel-Redirect"] == f"/protected-media/{photo.web.name}"
    else:
        assert answer.status_code == 302 and photo.web.name in answer["Location"]


def test_a_download_follows_changes_of_access_at_once(client_for, member, event, event_photos, settings):
    settings.MEDIA_ACCEL = "nginx"
    guest = client_for(member)
    # The attendee is person 0: not in p1.
    photo = event_photos["p1.png"]
    url = _file_url(photo, "web")
    assert _served(guest.get(url))
    access.set_visibility(event, EventVisibility.OWN)
    assert guest.get(url).status_code == 404
    access.set_visibility(event, EventVisibility.ALL)
    assert _served(guest.get(url))
    # Back on the queue (reprocessed): not served meanwhile, though no cache was told.
    Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.PROCESSING)
    assert guest.get(url).status_code == 404
    Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.DONE)
    assert _served(guest.get(url))
    Membership.objects.filter(user=member, event=event).delete()
    answer = guest.get(url)
    assert answer.status_code == 404
    assert "X-Accel-Redirect" not in answer and "Location" not in answer
    assert guest.get(reverse("gallery-photo-file", args=[photo.pk + 1000, "web"])).status_code == 404


@on_s3
def test_s3_answers_with_a_short_lived_presigned_url(page_client, photographer, event_photos, settings):
    settings.MEDIA_URL_TTL = 120
    photo = event_photos["p0.png"]
    answer = page_client(photographer).get(_file_url(photo, "original"))
    assert answer.status_code == 302
    assert answer["Cache-Control"] == "private, no-store"
    query = parse_qs(urlsplit(answer["Location"]).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert query["response-content-disposition"] == ['attachment; filename="p0.png"']
    fetched = media_answer(answer)
    assert fetched.status == 200
    assert fetched.body == photo.original.open("rb").read()
    assert fetched.headers["content-disposition"].startswith("attachment")


@on_s3
def test_the_whole_guest_path_on_s3_leaves_no_object_behind(
    page_client, photographer, attendee, event_photos, django_capture_on_commit_callbacks
):
    event = Event.objects.get(pk=event_photos["p0.png"].event_id)
    Membership.objects.create(user=attendee, event=event)
    guest = page_client(attendee)
    guest.post("/consent/", {"agree": "on"})
    guest.post("/selfie/", {"selfie": selfie_file([0])})
    mine = guest.get(reverse("gallery-my-photos", args=[event.pk]))
    assert mine.status_code == 200
    ids = {event_photos["p0.png"].pk, event_photos["p3.png"].pk}
    for photo_id in ids:
        assert media_answer(guest.get(reverse("gallery-photo-file", args=[photo_id, "web"]))).status == 200
    archive = media_answer(guest.get(reverse("gallery-my-photos-zip", args=[event.pk])))
    assert archive.status == 200
    assert len(zipfile.ZipFile(io.BytesIO(archive.body)).namelist()) == len(ids)

    with django_capture_on_commit_callbacks(execute=True):
        delete_event(event)
    client: Any = boto3.client("s3", endpoint_url=settings.AWS_S3_ENDPOINT_URL, region_name=settings.AWS_S3_REGION_NAME)
    listed = client.list_objects_v2(Bucket=settings.AWS_STORAGE_BUCKET_NAME, Prefix=f"events/{event.pk}/")
    assert listed.get("KeyCount", 0) == 0, [item["Key"] for item in listed.get("Contents", [])]
    assert not default_storage.exists(event_photos["p0.png"].original.name)
