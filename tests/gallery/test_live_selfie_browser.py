"""The live selfie page in Chromium, with a fake front camera playing a real portrait.

Chromium's `--use-fake-device-for-media-stream` with
`--use-file-for-fake-video-capture` turns a Y4M file into the camera. The file
here holds one still portrait, which is exactly the attack the check must stop:
the page opens the camera, follows the server's challenge, sends a frame per
pose, and shows the refusal. A guest whose selfie is a still sees no photo of
an "own photos only" event, on the pages or through the media view; on the
same live server the API issues challenges and refuses a still and a reused nonce.

Debian's Chromium drives it, as in test_guest_flow_browser.py; without
/usr/bin/chromium or the face photos the test skips.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.utils import timezone
from PIL import Image

from gallery.models import PHOTOGRAPHERS_GROUP, Event, EventVisibility, Match, Membership, Photo, Selfie, profile_for
from gallery.uploads import accept_uploads
from processing.pipeline import enrol_selfie
from processing.tasks import process_photos
from tests.conftest import png_upload
from tests.fakes import scene_png
from testsupport.browser import browser_session, launch_chromium, screenshot

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
GUEST_PASSWORD = "Evening-pass-2024"
# The guest is marker person 0: in p0 and p2.
SCENES = {"p0.png": [0, 1], "p1.png": [1], "p2.png": [0]}


def camera_y4m(portrait: Path, path: Path, frames: int = 30) -> Path:
    """A 640x480 Y4M clip (4:2:0) showing `portrait` still, for Chromium's fake camera."""
    canvas = Image.new("RGB", (640, 480), (120, 112, 104))
    face = Image.open(portrait).convert("RGB")
    face.thumbnail((420, 420))
    canvas.paste(face, ((640 - face.width) // 2, (480 - face.height) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    planes = [
        np.asarray(y).tobytes(),
        np.asarray(cb.resize((320, 240), Image.Resampling.BOX)).tobytes(),
        np.asarray(cr.resize((320, 240), Image.Resampling.BOX)).tobytes(),
    ]
    frame = b"FRAME\n" + b"".join(planes)
    path.write_bytes(b"YUV4MPEG2 W640 H480 F15:1 Ip A1:1 C420jpeg\n" + frame * frames)
    return path


@pytest.fixture
def server_url(start_server: Callable[..., Any]) -> str:
    return str(start_server(DEBUG="false").url)


@pytest.fixture
def own_photos_event(transactional_db: None, fake_backend: Any) -> Event:
    """An "own photos only" event, processed, with a guest whose selfie is a still."""
    hasher = PBKDF2PasswordHasher()
    owner = User.objects.create(username="studio", password=hasher.encode("Studio-pass-2024", hasher.salt()))
    owner.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    event = Event.objects.create(owner=owner, name="School Fair", visibility=EventVisibility.OWN)
    uploads = [png_upload(name, scene_png(people, seed=i)) for i, (name, people) in enumerate(SCENES.items())]
    accepted, rejected = accept_uploads(event, owner, uploads)
    assert not rejected
    process_photos([a.photo.pk for a in accepted])
    guest = User.objects.create(username="guest", password=hasher.encode(GUEST_PASSWORD, hasher.salt()))
    profile = profile_for(guest)
    profile.face_consent_at = timezone.now()
    profile.save()
    Membership.objects.create(user=guest, event=event)
    enrol_selfie(guest, png_upload("me.png", scene_png([0])))
    assert Match.objects.filter(user=guest).count() == 2
    return event


def launch(playwright: Any, *extra_args: str) -> Any:
    browser = launch_chromium(playwright, *extra_args)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, permissions=["camera"])
    context.set_default_timeout(15_000)
    return browser, context.new_page()


@pytest.fixture
def playwright(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with browser_session(monkeypatch) as session:
        yield session


def log_in(page: Any, base: str, next_path: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.get_by_label("Username").fill("guest")
    page.get_by_label("Password").fill(GUEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()


def status_of(url: str, cookies: list[dict[str, Any]]) -> int:
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    request = urllib.request.Request(url, headers={"Cookie": header})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_still_selfie_sees_nothing_and_a_still_camera_is_refused(
    server_url: str, own_photos_event: Event, playwright: Any, faces_dir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    event, base = own_photos_event, server_url
    camera = camera_y4m(faces_dir / "people" / "barack_obama" / "1.jpg", tmp_path / "camera.y4m")
    browser, page = launch(
        playwright,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
    )
    try:
        log_in(page, base, f"/events/{event.pk}/")

        # My photos: no photo, an invitation to verify instead.
        expect(page.get_by_role("heading", name="School Fair")).to_be_visible()
        expect(page.locator("ul.grid img")).to_have_count(0)
        verify = page.get_by_role("link", name="Verify with your camera")
        expect(verify).to_be_visible()
        screenshot(page, "live-01-my-photos-still-selfie")

        # Nor through the photo pages, the media view or the ZIP.
        cookies = page.context.cookies()
        for photo in Photo.objects.filter(event=event, matches__user__username="guest"):
            assert status_of(f"{base}/photos/{photo.pk}/", cookies) == 404
            assert status_of(f"{base}/media/photos/{photo.pk}/thumbnail", cookies) == 404
        zip_request = urllib.request.Request(
            f"{base}/events/{event.pk}/my-photos.zip",
            headers={"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in cookies)},
        )
        with urllib.request.urlopen(zip_request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/html")

        # The camera page follows the challenge and sends the frames.
        verify.click()
        expect(page.get_by_role("heading", name="Verify with your camera")).to_be_visible()
        page.get_by_role("button", name="Start the camera").click()
        expect(page.get_by_text("Look straight at the camera")).to_be_visible()
        assert page.evaluate("document.querySelector('video').videoWidth") == 640
        instructions = re.compile("Turn your head to your (left|right)|Tilt your head up")
        expect(page.get_by_text(instructions)).to_be_visible()
        screenshot(page, "live-02-pose")
        refusal = page.get_by_text(re.compile(r"Pictures \d and \d are the same image"))
        expect(refusal).to_be_visible(timeout=60_000)
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        screenshot(page, "live-03-refused")
        assert not Selfie.objects.filter(user__username="guest", live_verified_at__isnull=False).exists()
    finally:
        browser.close()


def test_without_a_camera_the_page_offers_the_event_qr_code(
    server_url: str, own_photos_event: Event, playwright: Any
) -> None:
    from playwright.sync_api import expect

    event, base = own_photos_event, server_url
    browser, page = launch(playwright)
    try:
        log_in(page, base, f"/selfie/live/?next=/events/{event.pk}/")
        page.get_by_role("button", name="Start the camera").click()
        expect(page.get_by_text("This device has no camera we can use.")).to_be_visible()
        qr = page.get_by_role("img", name=re.compile("QR code"))
        expect(qr).to_be_visible()
        expect(page.get_by_text(f"/e/{event.code}/")).to_be_visible()
        screenshot(page, "live-04-no-camera")
    finally:
        browser.close()


def test_the_live_selfie_api_on_a_live_server(server_url: str, own_photos_event: Event, faces_dir: Path) -> None:
    import requests

    from gallery.tokens import issue_token

    token = issue_token(User.objects.get(username="guest"))
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    mine = session.get(f"{server_url}/api/my-photos", params={"event": own_photos_event.pk}, timeout=30).json()
    assert (mine["photos"], mine["live_selfie_required"]) == ([], True)

    challenge = session.post(f"{server_url}/api/me/selfie/challenge", timeout=30)
    assert challenge.status_code == 200
    body = challenge.json()
    assert body["poses"][0] == "front" and set(body["poses"][1:]) <= {"left", "right", "up"}
    still = (faces_dir / "people" / "barack_obama" / "1.jpg").read_bytes()
    frames = [("frames", (f"frame-{n}.jpg", still, "image/jpeg")) for n in range(len(body["poses"]))]
    for code in ("duplicate_frames", "challenge_used"):
        answer = session.post(
            f"{server_url}/api/me/selfie/live", data={"nonce": body["nonce"]}, files=frames, timeout=60
        )
        assert (answer.status_code, answer.json()["code"]) == (400, code)
