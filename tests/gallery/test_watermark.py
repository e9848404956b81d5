"""The event's watermark: on web renditions and guests' downloads, never on the photographer's originals."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from django.urls import reverse
from PIL import Image, ImageChops, ImageStat

from gallery.models import Event, Face, Match, Photo
from processing import tasks
from processing.services import WatermarkSettings, set_watermark
from tests.gallery.conftest import selfie_file
from testsupport.media import media_answer

# With a bottom-right mark 40% of the width wide, this box is inside it, and
# the other one is far from it (and from the scenes' face markers).
MARK_BOX = (400, 420, 620, 465)
CLEAR_BOX = (250, 150, 390, 300)


def _url(photo: Photo, variant: str) -> str:
    return reverse("gallery-photo-file", args=[photo.pk, variant])


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def _difference(a: Image.Image, b: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Mean absolute difference of the two pictures inside `box`, over the channels (0 to 255)."""
    diff = ImageChops.difference(a.crop(box), b.crop(box))
    return sum(ImageStat.Stat(diff).mean) / 3


def _original(photo: Photo) -> Image.Image:
    with photo.original.open("rb") as stored:
        return _decoded(stored.read())


def _assert_marked(data: bytes, photo: Photo) -> None:
    marked, clean = _decoded(data), _original(photo)
    assert marked.size == clean.size
    assert _difference(marked, clean, MARK_BOX) > 15
    assert _difference(marked, clean, CLEAR_BOX) < 4


@pytest.fixture
def guest(page_client: Any, member: Any, event: Event, event_photos: dict[str, Photo]) -> Any:
    """The member's browser, enrolled as person 0 (in p0.png and p3.png)."""
    client = page_client(member)
    client.post(reverse("gallery-selfie"), {"selfie": selfie_file([0])})
    assert Match.objects.filter(user=member, event=event).count() == 2
    return client


def _put(client: Any, event: Event, body: dict[str, Any], capture: Any, fmt: str = "json") -> Any:
    with capture(execute=True):
        return client.put(f"/api/photographer/events/{event.pk}/watermark", body, format=fmt)


TEXT_MARK = {"text": "PHOTOEVENT", "position": "bottom-right", "opacity": 1, "size": 0.4}


def test_guest_download_is_watermarked_and_the_photographers_original_is_not(
    client_for, photographer, event, event_photos, guest, page_client, django_capture_on_commit_callbacks
):
    response = _put(client_for(photographer), event, TEXT_MARK, django_capture_on_commit_callbacks)
    assert response.status_code == 200, response.content
    assert response.json()["rerendering"] is True
    photo = event_photos["p0.png"]

    download = media_answer(guest.get(_url(photo, "original")))
    assert download.status == 200
    assert download.headers["content-type"] == "image/jpeg"
    assert download.headers["content-disposition"] == 'attachment; filename="p0.jpg"'
    _assert_marked(download.body, photo)

    web = _decoded(media_answer(guest.get(_url(photo, "web"))).body)
    assert _difference(web, _original(photo), MARK_BOX) > 15

    own = media_answer(page_client(photographer).get(_url(photo, "original")))
    with photo.original.open("rb") as stored:
        assert own.body == stored.read()


def test_the_guests_zip_holds_watermarked_copies(
    client_for, photographer, event, event_photos, guest, django_capture_on_commit_callbacks
):
    _put(client_for(photographer), event, TEXT_MARK, django_capture_on_commit_callbacks)
    response = guest.get(reverse("gallery-my-photos-zip", args=[event.pk]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = sorted(archive.namelist())
    assert [name.split("-", 1)[1] for name in names] == ["p0.jpg", "p3.jpg"]
    for name in names:
        _assert_marked(archive.read(name), event_photos[name.split("-", 1)[1].replace(".jpg", ".png")])


def test_guests_get_originals_when_the_photographer_allows_it_without_a_rerender(
    client_for, photographer, event, event_photos, guest, django_capture_on_commit_callbacks
):
    _put(client_for(photographer), event, TEXT_MARK, django_capture_on_commit_callbacks)
    version = Event.objects.get(pk=event.pk).watermark_version
    response = _put(client_for(photographer), event, {"guests_get_originals": True}, django_capture_on_commit_callbacks)
    assert response.json()["rerendering"] is False
    assert Event.objects.get(pk=event.pk).watermark_version == version
    photo = event_photos["p0.png"]
    download = media_answer(guest.get(_url(photo, "original")))
    with photo.original.open("rb") as stored:
        assert download.body == stored.read()


def test_without_a_watermark_guests_get_the_original(event_photos, guest):
    photo = event_photos["p0.png"]
    download = media_answer(guest.get(_url(photo, "original")))
    with photo.original.open("rb") as stored:
        assert download.body == stored.read()


def test_a_rerender_leaves_faces_and_matches_untouched_and_never_calls_the_backend(
    event, event_photos, guest, fake_backend, monkeypatch, django_capture_on_commit_callbacks
):
    faces_before = list(Face.objects.filter(event=event).order_by("pk").values())
    matches_before = list(Match.objects.filter(event=event).order_by("pk").values())
    for method in ("index_photo", "match_faces", "match_event", "match_reference"):
        monkeypatch.setattr(fake_backend, method, _must_not_be_called)
    with django_capture_on_commit_callbacks(execute=True):
        assert set_watermark(event, WatermarkSettings("X", "center", 0.8, 0.3, False))
    assert set(Photo.objects.filter(event=event).values_list("watermark_version", flat=True)) == {1}
    assert list(Face.objects.filter(event=event).order_by("pk").values()) == faces_before
    assert list(Match.objects.filter(event=event).order_by("pk").values()) == matches_before
    # Idempotent: a redelivered task finds nothing to do.
    ids = list(Photo.objects.filter(event=event).values_list("pk", flat=True))
    assert set(tasks.rerender_photos(ids).values()) == {"current"}


def _must_not_be_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("a re-render must not call the face backend")


def test_removing_the_watermark_removes_the_watermarked_copies(
    client_for, photographer, event, event_photos, guest, django_capture_on_commit_callbacks
):
    _put(client_for(photographer), event, TEXT_MARK, django_capture_on_commit_callbacks)
    photo = Photo.objects.get(pk=event_photos["p0.png"].pk)
    marked_name = photo.watermarked.name
    assert photo.watermarked.storage.exists(marked_name)
    _put(client_for(photographer), event, {"text": ""}, django_capture_on_commit_callbacks)
    photo.refresh_from_db()
    assert not photo.watermarked
    assert not photo.watermarked.storage.exists(marked_name)
    web = _decoded(media_answer(guest.get(_url(photo, "web"))).body)
    assert _difference(web, _original(photo), MARK_BOX) < 4


def test_a_photo_processed_after_the_watermark_is_set_carries_it(
    client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks
):
    _put(client_for(photographer), event, TEXT_MARK, django_capture_on_commit_callbacks)
    from tests.conftest import png_upload
    from tests.fakes import scene_png

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos",
            {"photos": [png_upload("late.png", scene_png([0]))]},
            format="multipart",
        )
    photo = Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])
    assert photo.watermark_version == 1
    with photo.watermarked.open("rb") as stored:
        _assert_marked(stored.read(), photo)


def _logo_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (200, 100), (255, 0, 0, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_png_logo_is_drawn(client_for, photographer, event, event_photos, guest, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    logo = SimpleUploadedFile("logo.png", _logo_png(), content_type="image/png")
    body = {"logo": logo, "position": "bottom-right", "opacity": "1", "size": "0.4"}
    response = _put(client_for(photographer), event, body, django_capture_on_commit_callbacks, fmt="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["has_logo"] is True
    photo = event_photos["p0.png"]
    marked = _decoded(media_answer(guest.get(_url(photo, "original"))).body)
    red = marked.getpixel((MARK_BOX[0] + 20, MARK_BOX[1] + 10))
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"opacity": "lots"}, "opacity"),
        ({"opacity": 2}, "opacity"),
        ({"position": "middle"}, "position"),
        ({"text": "x" * 101}, "text"),
    ],
)
def test_bad_values_get_a_400_with_a_message(client_for, photographer, event, body, message):
    response = client_for(photographer).put(f"/api/photographer/events/{event.pk}/watermark", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"not an image", "logo.png"), (_logo_png()[:60], "cut.png"), (None, "logo.jpg")],
)
def test_a_bad_logo_gets_a_400_with_a_message(client_for, photographer, event, data, name):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if data is None:
        buffer = io.BytesIO()
        Image.new("RGB", (50, 50)).save(buffer, "JPEG")
        data = buffer.getvalue()
    logo = SimpleUploadedFile(name, data)
    response = client_for(photographer).put(
        f"/api/photographer/events/{event.pk}/watermark", {"logo": logo}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("logo: ")
    assert not Event.objects.get(pk=event.pk).watermark_logo


def test_only_the_owner_sets_the_watermark(client_for, other_photographer, member, staff, event):
    url = f"/api/photographer/events/{event.pk}/watermark"
    assert client_for(other_photographer).put(url, {"text": "mine"}, format="json").status_code == 404
    assert client_for(member).put(url, {"text": "mine"}, format="json").status_code == 403
    assert Event.objects.get(pk=event.pk).watermark_text == ""


def test_the_studio_form_works_without_javascript(page_client, photographer, event, django_capture_on_commit_callbacks):
    client = page_client(photographer)
    page = client.get(reverse("gallery-studio-event", args=[event.pk]))
    assert 'enctype="multipart/form-data"' in page.content.decode()
    url = reverse("gallery-studio-event-watermark", args=[event.pk])
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, {"text": "Studio", "position": "top-left", "opacity": "60", "size": "20"})
    assert saved.status_code == 302
    event.refresh_from_db()
    assert (event.watermark_text, event.watermark_position, event.watermark_opacity) == ("Studio", "top-left", 0.6)
    refused = client.post(url, {"text": "Studio", "position": "top-left", "opacity": "600", "size": "20"})
    assert refused.status_code == 400
    assert "opacity" in refused.content.decode().lower()
