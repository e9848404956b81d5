"""Selfies: rate-limited per user and per address, decoded at reduced size, in bounded memory."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.conf import global_settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageFile

from processing.images import InvalidImage, open_upright
from tests.conftest import PASSWORD, png_upload
from tests.fakes import scene_png
from testsupport.processes import Proc, proc_status_kb
from testsupport.users import create_user

MB = 1024 * 1024


def blank_png(width: int, height: int, colour_type: int = 0) -> bytes:
    """A black PNG of any size, written row by row: a few KB for 88 megapixels, made in little memory.

    colour_type 0 is 8-bit grey, 2 is 8-bit RGB (Pillow decodes it at 4 bytes a pixel)
    and 3 is a palette (1 byte a pixel, converted to RGB before it is reduced).
    """
    channels = {0: 1, 2: 3, 3: 1}[colour_type]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + width * channels)  # filter byte 0, then black pixels
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    palette = chunk(b"PLTE", bytes(3)) if colour_type == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + palette + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 90).save(buffer, "JPEG")
    return buffer.getvalue()


def post_selfie(client: Any, data: bytes = b"", **extra: Any) -> Any:
    body = {"selfie": png_upload("me.png", data or scene_png([0]))}
    return client.post("/api/me/selfie", body, **extra)


# --- Rate limits -----------------------------------------------------------------


@pytest.mark.django_db
def test_api_selfies_are_limited_per_user(
    client_for: Callable[[User], Any], member: User, make_user: Callable[..., User], fake_backend: Any, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "selfie": "2/m"}
    client = client_for(member)
    statuses = [post_selfie(client).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = post_selfie(client)
    assert limited.status_code == 429 and limited["Retry-After"]
    assert "detail" in limited.json()
    # Another user from the same address is not limited by the first one's count.
    assert post_selfie(client_for(make_user("other"))).status_code == 200


@pytest.mark.django_db
def test_api_selfies_are_limited_per_address(
    client_for: Callable[[User], Any], make_user: Callable[..., User], fake_backend: Any, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "selfie": "100/m", "selfie-ip": "3/m"}
    users = [make_user(f"guest{n}") for n in range(4)]
    statuses = [post_selfie(client_for(user)).status_code for user in users]
    assert statuses == [200, 200, 200, 429]
    # A different address has its own count.
    assert post_selfie(client_for(users[3]), REMOTE_ADDR="203.0.113.5").status_code == 200


@pytest.mark.django_db
def test_the_selfie_page_is_limited_per_user(
    page_client: Callable[[User], Any], member: User, fake_backend: Any, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "selfie": "2/m"}
    client = page_client(member)
    statuses = [client.post("/selfie/", {"selfie": png_upload("me.png", scene_png([0]))}).status_code for _ in range(3)]
    assert statuses == [302, 302, 429]
    # Looking at the page is not an attempt.
    assert client.get("/selfie/").status_code == 200


# --- Decoding at reduced size ----------------------------------------------------


def test_a_huge_png_is_refused_from_its_header_without_decoding(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    def no_decoding(self: Any) -> Any:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    data = blank_png(11_000, 8_000)
    assert len(data) < 200_000
    with pytest.raises(InvalidImage, match="11000x8000"):
        open_upright(io.BytesIO(data), 1024, max_full_decode_pixels=settings.SELFIE_MAX_PIXELS)


def test_a_large_jpeg_is_decoded_at_reduced_size() -> None:
    # JPEG decodes at 1/2, 1/4 or 1/8 scale, so no full-decode limit applies to it.
    image = open_upright(io.BytesIO(jpeg_bytes((6000, 4000))), 1024, max_full_decode_pixels=1_000_000)
    assert max(image.size) == 1024 and image.mode == "RGB"


def test_a_png_under_the_limit_is_reduced_and_upright() -> None:
    buffer = io.BytesIO()
    Image.new("P", (3000, 1500), 3).save(buffer, "PNG")
    image = open_upright(buffer, 1024, max_full_decode_pixels=5_000_000)
    assert image.size == (1024, 512) and image.mode == "RGB"


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_a_rotated_image_is_reduced_then_turned_upright(image_format: str) -> None:
    stored = Image.new("RGB", (2000, 1000), (220, 20, 20))
    stored.paste((20, 20, 220), (1000, 0, 2000, 1000))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    buffer = io.BytesIO()
    stored.save(buffer, image_format, exif=exif)
    image = open_upright(buffer, 1024, max_full_decode_pixels=5_000_000)
    assert image.size == (512, 1024)
    # The stored left half (red) is the top once upright.
    top, bottom = image.getpixel((256, 100)), image.getpixel((256, 924))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


@pytest.mark.django_db
def test_the_api_refuses_a_huge_png_selfie_with_a_clear_400(
    client_for: Callable[[User], Any], member: User, fake_backend: Any
) -> None:
    response = post_selfie(client_for(member), blank_png(11_000, 8_000))
    assert response.status_code == 400
    assert "11000x8000" in response.json()["detail"]
    assert not member.selfies.exists()


@pytest.mark.django_db
def test_the_page_refuses_a_huge_png_selfie_with_a_message(
    page_client: Callable[[User], Any], member: User, fake_backend: Any
) -> None:
    upload = SimpleUploadedFile("me.png", blank_png(11_000, 8_000), content_type="image/png")
    response = page_client(member).post("/selfie/", {"selfie": upload})
    assert response.status_code == 200
    assert "11000x8000" in response.content.decode()


# --- Memory of a live web process ------------------------------------------------


def test_a_live_worker_stays_within_its_memory_bound_for_one_selfie(
    start_server: Callable[..., Proc], settings: Any
) -> None:
    """The bound: SELFIE_MAX_PIXELS x 4 bytes (one full-size bitmap) plus 32 MB; a refused selfie costs under 32 MB."""
    server = start_server(RATE_LIMIT_SELFIE="1000/m", RATE_LIMIT_SELFIE_IP="1000/m", RATE_LIMIT_AUTH="1000/m")
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    create_user("guest", password=PASSWORD)
    response = requests.post(
        f"{server.url}/api/auth/token", json={"username": "guest", "password": PASSWORD}, timeout=60
    )
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.headers["Authorization"] = f"Token {response.json()['token']}"

    def selfie(data: bytes) -> requests.Response:
        return session.post(f"{server.url}/api/me/selfie", files={"selfie": ("me.png", data)}, timeout=120)

    # A first, ordinary selfie loads what every request needs; its answer comes at once.
    first = selfie(scene_png([0]))
    assert first.status_code == 200 and first.json() == {"faces_found": 1}, first.text
    before = proc_status_kb(server.pid, "VmHWM")

    huge = selfie(blank_png(11_000, 8_000))
    assert huge.status_code == 400 and "11000x8000" in huge.json()["detail"]
    grown = (proc_status_kb(server.pid, "VmHWM") - before) * 1024
    assert grown < 32 * MB, f"{grown // MB} MB for a refused selfie"

    # The largest PNGs accepted: RGB decodes to 4 bytes a pixel, a palette is converted to RGB.
    side = int(settings.SELFIE_MAX_PIXELS**0.5)
    bound = settings.SELFIE_MAX_PIXELS * 4 + 32 * MB
    for colour_type in (2, 3):
        largest = selfie(blank_png(side, side, colour_type))
        assert largest.status_code == 400 and "No face" in largest.json()["detail"], largest.text
        grown = (proc_status_kb(server.pid, "VmHWM") - before) * 1024
        assert grown < bound, f"{grown // MB} MB for one selfie (PNG colour type {colour_type}), bound {bound // MB} MB"


# --- The live selfie's frames ------------------------------------------------------


@pytest.mark.django_db
def test_a_huge_png_frame_of_a_live_selfie_is_refused_without_decoding(
    client_for: Callable[[User], Any], member: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(member)
    challenge = client.post("/api/me/selfie/challenge").json()

    def no_decoding(self: Any) -> Any:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    huge = blank_png(11_000, 8_000)
    frames = [png_upload(f"frame-{n}.png", huge) for n in range(len(challenge["poses"]))]
    response = client.post("/api/me/selfie/live", {"nonce": challenge["nonce"], "frames": frames})
    assert response.status_code == 400
    assert response.json()["frame"] == 1


@pytest.mark.django_db
def test_live_selfies_count_against_the_address_limit(
    client_for: Callable[[User], Any], make_user: Callable[..., User], settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "selfie-ip": "2/m"}
    statuses = [
        client_for(make_user(f"guest{n}")).post("/api/me/selfie/live", {"nonce": "x"}).status_code for n in range(3)
    ]
    assert statuses == [400, 400, 429]
