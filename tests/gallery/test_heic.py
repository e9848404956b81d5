"""HEIC/HEIF (iPhone photos): accepted wherever JPEG is, originals kept, renditions in JPEG."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery.models import Photo, PhotoStatus, Selfie
from processing.services import InvalidImage, inspect_image
from tests.fakes import scene_png
from testsupport.heic import heic_bytes
from testsupport.media import media_answer

pytestmark = pytest.mark.django_db


def heic_upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/heic")


def noisy_heic(size: tuple[int, int] = (320, 240)) -> bytes:
    """A HEIC whose image data is most of the file, so that cutting it loses pixels, not boxes."""
    return heic_bytes(Image.effect_noise(size, 64).convert("RGB"), quality=90)


def test_a_heic_is_inspected_as_heif() -> None:
    info = inspect_image(io.BytesIO(heic_bytes(scene_png([0]))))
    assert (info.format, info.width, info.height) == ("HEIF", 640, 480)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.98])
def test_a_truncated_heic_is_refused(keep: float) -> None:
    data = noisy_heic()
    with pytest.raises(InvalidImage):
        inspect_image(io.BytesIO(data[: int(len(data) * keep)]))


def test_a_heic_photo_uploads_and_is_processed_to_done(
    client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks
):
    original = heic_bytes(scene_png([0, 1]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos",
            {"photos": [heic_upload("IMG_0001.HEIC", original)]},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    photo = Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])
    assert photo.status == PhotoStatus.DONE, photo.error
    assert photo.format == "HEIF" and photo.face_count == 2
    assert photo.original.name.endswith(".heic")
    with photo.original.open("rb") as stored:
        assert stored.read() == original, "the original is kept as sent"
    for rendition in (photo.thumbnail, photo.web):
        with rendition.open("rb") as stored, Image.open(stored) as image:
            assert image.format == "JPEG"


def test_the_original_is_served_as_heic(client_for, photographer, event, fake_backend):
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/upload-photos",
        {"photos": [heic_upload("a.heic", heic_bytes(scene_png([0])))]},
        format="multipart",
    )
    photo_id = response.json()["jobs"][0]["photo_id"]
    original = media_answer(client_for(photographer).get(f"/media/photos/{photo_id}/original"))
    assert original.status == 200
    assert original.headers["content-type"] == "image/heic"


def test_a_truncated_heic_upload_is_400(client_for, photographer, event):
    data = noisy_heic()
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/upload-photos",
        {"photos": [heic_upload("cut.heic", data[: len(data) * 9 // 10])]},
        format="multipart",
    )
    assert response.status_code == 400
    assert "damaged or truncated" in response.json()["rejected"][0]["error"]


def test_a_heic_selfie_is_enrolled(client_for, attendee, fake_backend):
    response = client_for(attendee).post(
        "/api/me/selfie", {"selfie": heic_upload("me.heic", heic_bytes(scene_png([0])))}, format="multipart"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"faces_found": 1}
    selfie = Selfie.objects.get(user=attendee)
    with selfie.image.open("rb") as stored, Image.open(stored) as image:
        assert image.format == "JPEG"


def test_a_heic_cut_between_its_boxes_is_refused() -> None:
    data = noisy_heic()
    image_data_at = data.index(b"mdat") - 4
    with pytest.raises(InvalidImage, match="truncated"):
        inspect_image(io.BytesIO(data[:image_data_at]))
