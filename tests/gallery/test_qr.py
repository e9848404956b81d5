"""The event's QR code on the studio page and as PNG and SVG downloads."""

from __future__ import annotations

import io

import pytest
import segno
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery import qr

pytestmark = pytest.mark.django_db


def png_url(event):
    return reverse("gallery-studio-qr-png", args=[event.pk])


def svg_url(event):
    return reverse("gallery-studio-qr-svg", args=[event.pk])


def pixel(image: Image.Image, x: int, y: int) -> int:
    value = image.getpixel((x, y))
    assert isinstance(value, int)
    return value


def modules_of(png: bytes, size: int) -> list[list[bool]]:
    """Read the dark/light modules back from the PNG at the known scale and border."""
    image = Image.open(io.BytesIO(png)).convert("L")
    step, border = qr.PNG_SCALE, qr.BORDER
    return [
        [
            pixel(image, (col + border) * step + step // 2, (row + border) * step + step // 2) < 128
            for col in range(size)
        ]
        for row in range(size)
    ]


def test_png_encodes_the_join_link(page_client, photographer, event):
    response = page_client(photographer).get(png_url(event))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "Content-Disposition" not in response
    link = f"http://testserver/e/{event.code}/"
    expected = segno.make(link, error="q", micro=False)
    matrix = [[bool(cell) for cell in row] for row in expected.matrix]
    assert modules_of(response.content, len(matrix)) == matrix


def test_svg_download_is_an_attachment_with_a_title(page_client, photographer, event):
    response = page_client(photographer).get(svg_url(event) + "?download=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"] == f'attachment; filename="wedding-{event.code}-qr.svg"'
    body = response.content.decode()
    assert body.startswith("<?xml") and "<svg" in body
    assert "<title>QR code: join Wedding</title>" in body


def test_png_download_is_an_attachment(page_client, photographer, event):
    response = page_client(photographer).get(png_url(event) + "?download=1")
    assert response["Content-Disposition"] == f'attachment; filename="wedding-{event.code}-qr.png"'
    assert response.content.startswith(b"\x89PNG")


def test_studio_event_page_shows_the_code_and_both_downloads(page_client, photographer, event):
    body = page_client(photographer).get(reverse("gallery-studio-event", args=[event.pk])).content.decode()
    assert f'<img src="{png_url(event)}" alt="QR code that opens http://testserver/e/{event.code}/"' in body
    assert f'href="{png_url(event)}?download=1"' in body
    assert f'href="{svg_url(event)}?download=1"' in body


@pytest.mark.parametrize("who", ["other_photographer", "attendee"])
def test_only_the_owner_and_staff_get_the_code(request, page_client, event, staff, who):
    outsider = page_client(request.getfixturevalue(who))
    assert outsider.get(png_url(event)).status_code == 404
    assert outsider.get(svg_url(event)).status_code == 404
    assert page_client(staff).get(svg_url(event)).status_code == 200
    assert Client().get(png_url(event))["Location"].startswith("/login/")
