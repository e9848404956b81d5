"""The guest's pages for corrections and photos: not me, hidden photos, that's me, the photo page, face crops."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from PIL import Image, ImageDraw

from gallery.models import Event, Face, Match, Photo
from processing.crops import FACE_SHARE
from tests.conftest import png_upload
from tests.fakes import MARKERS
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def guest(page_client: Any, member: Any, event_photos: dict[str, Photo], event: Event) -> Any:
    """The member's browser, with a selfie of marker person 0 (in p0 and p3)."""
    client = page_client(member)
    client.post(reverse("gallery-selfie"), {"selfie": selfie_file([0]), "next": "/"})
    assert set(Match.objects.filter(user=member).values_list("photo__filename", flat=True)) == {"p0.png", "p3.png"}
    return client


def html(response: Any) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_not_me_hides_the_photo_and_the_hidden_list_brings_it_back(
    guest: Any, event: Event, event_photos: dict[str, Photo]
) -> None:
    p3 = event_photos["p3.png"]
    mine_url = reverse("gallery-my-photos", args=[event.pk])
    page = html(guest.get(mine_url))
    assert reverse("gallery-photo-not-me", args=[p3.pk]) in page
    response = guest.post(reverse("gallery-photo-not-me", args=[p3.pk]), {"next": mine_url})
    assert response.status_code == 302 and response["Location"] == mine_url
    page = html(guest.get(mine_url))
    assert reverse("gallery-photo", args=[p3.pk]) not in page
    assert "1 hidden photo" in page

    hidden = html(guest.get(reverse("gallery-hidden-photos", args=[event.pk])))
    undo = reverse("gallery-photo-not-me-undo", args=[p3.pk])
    assert undo in hidden
    guest.post(undo)
    assert reverse("gallery-photo", args=[p3.pk]) in html(guest.get(mine_url))


def test_thats_me_on_a_photo_with_several_faces_lets_the_guest_pick(
    guest: Any, member: Any, event: Event, event_photos: dict[str, Photo]
) -> None:
    p2 = event_photos["p2.png"]
    all_url = reverse("gallery-all-photos", args=[event.pk])
    page = html(guest.get(all_url))
    me_url = reverse("gallery-photo-me", args=[p2.pk])
    assert me_url in page
    assert reverse("gallery-photo-me", args=[event_photos["p0.png"].pk]) not in page  # already theirs

    response = guest.post(me_url, {"next": all_url})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("gallery-photo", args=[p2.pk]))
    assert response["Location"].endswith("#faces")
    picker = html(guest.get(response["Location"]))
    faces = list(Face.objects.filter(photo=p2).order_by("left"))
    for face in faces:
        assert f'name="face_id" value="{face.pk}"' in picker
        assert reverse("gallery-photo-face", args=[p2.pk, face.pk]) in picker

    response = guest.post(me_url, {"face_id": faces[1].pk, "next": all_url})
    assert response.status_code == 302 and response["Location"] == all_url
    assert Match.objects.get(user=member, photo=p2).face == faces[1]


def test_the_photo_page_steps_through_the_list_it_came_from(
    guest: Any, member: Any, event: Event, event_photos: dict[str, Photo]
) -> None:
    mine = [m.photo_id for m in Match.objects.filter(user=member).order_by("-similarity", "photo_id")]
    first, second = mine
    page = html(guest.get(reverse("gallery-photo", args=[first]) + "?from=mine"))
    assert re.search(rf'rel="next" href="/photos/{second}/\?from=mine', page)
    assert 'rel="prev"' not in page
    assert "1 of 2" in page
    page = html(guest.get(reverse("gallery-photo", args=[second]) + "?from=mine"))
    assert re.search(rf'rel="prev" href="/photos/{first}/\?from=mine', page)
    assert 'rel="next"' not in page

    every = [p.pk for p in Photo.objects.filter(event=event).order_by("-created_at", "-id")]
    page = html(guest.get(reverse("gallery-photo", args=[every[1]]) + "?from=all"))
    assert re.search(rf'rel="prev" href="/photos/{every[0]}/\?from=all', page)
    assert re.search(rf'rel="next" href="/photos/{every[2]}/\?from=all', page)
    assert "Download original" in page and 'id="share" hidden' in page


def test_the_pages_have_no_inline_scripts_or_styles(guest: Any, event: Event, event_photos: dict[str, Photo]) -> None:
    urls = [
        reverse("gallery-my-photos", args=[event.pk]),
        reverse("gallery-all-photos", args=[event.pk]),
        reverse("gallery-hidden-photos", args=[event.pk]),
        reverse("gallery-photo", args=[event_photos["p2.png"].pk]),
        reverse("gallery-photo", args=[event_photos["p0.png"].pk]),
    ]
    for url in urls:
        page = html(guest.get(url))
        assert " style=" not in page and "<style" not in page, url
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page)), url


def face_photo(size: tuple[int, int], box: tuple[int, int, int, int]) -> bytes:
    """A PNG with one marker face (person 0) at `box`, and marker person 1's colour nowhere."""
    image = Image.new("RGB", size, (120, 130, 140))
    ImageDraw.Draw(image).rectangle(box, fill=MARKERS[0])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_my_photos_thumbnails_are_cut_around_the_guests_face(
    client_for: Any, photographer: Any, member: Any, page_client: Any, event: Event, fake_backend: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    # A face in the bottom-right corner of a wide photo: a centred square leaves it out.
    upload = png_upload("corner.png", face_photo((1600, 900), (1400, 700, 1499, 799)))
    with django_capture_on_commit_callbacks(execute=True):
        client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": [upload]}, format="multipart"
        )
    client = page_client(member)
    client.post(reverse("gallery-selfie"), {"selfie": selfie_file([0]), "next": "/"})
    match = Match.objects.get(user=member)
    page = html(client.get(reverse("gallery-my-photos", args=[event.pk])))
    crop_url = reverse("gallery-photo-face", args=[match.photo_id, match.face_id])
    assert f'src="{crop_url}"' in page

    response = client.get(crop_url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    crop = Image.open(io.BytesIO(b"".join(response))).convert("RGB")
    assert crop.width == crop.height

    def is_face(x: int, y: int) -> bool:
        pixel: tuple[int, int, int] = crop.getpixel((x, y))  # type: ignore[assignment]
        return sum(abs(a - b) for a, b in zip(pixel, MARKERS[0], strict=True)) < 60

    face_columns = [x for x in range(crop.width) if is_face(x, crop.height // 2 - crop.height // 10)]
    assert face_columns, "the face is not in the crop"
    # The face fills its share of the crop, near the middle (pushed right by the photo's edge).
    assert len(face_columns) / crop.width == pytest.approx(FACE_SHARE, abs=0.08)
    assert crop.width // 4 < sum(face_columns) / len(face_columns) < crop.width

    # The crop is served only to those who may see the photo, and only for its own faces.
    assert page_client(photographer).get(crop_url).status_code == 200
    other = Face.objects.exclude(photo_id=match.photo_id).first()
    if other is not None:
        assert client.get(reverse("gallery-photo-face", args=[match.photo_id, other.pk])).status_code == 404


def test_a_stranger_gets_no_crop(page_client: Any, make_user: Any, event_photos: dict[str, Photo]) -> None:
    photo = event_photos["p0.png"]
    face = Face.objects.filter(photo=photo).first()
    assert face is not None
    response = page_client(make_user("stranger")).get(reverse("gallery-photo-face", args=[photo.pk, face.pk]))
    assert response.status_code == 404


def test_staff_see_the_corrections_in_the_admin(
    guest: Any, member: Any, staff: Any, page_client: Any, event_photos: dict[str, Photo]
) -> None:
    guest.post(reverse("gallery-photo-not-me", args=[event_photos["p3.png"].pk]))
    staff.user_permissions.add(Permission.objects.get(codename="view_matchcorrection"))
    page = html(page_client(staff).get("/admin/gallery/matchcorrection/"))
    assert "p3.png" in page or str(event_photos["p3.png"]) in page
