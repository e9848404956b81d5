"""The guest's whole evening in a real browser on a phone-sized screen.

QR link → event page → one tap, no password → consent → selfie from a file → my photos → one photo and
the ZIP downloaded → face data deleted, against `manage.py runserver` on the
test database with the marker face backend. Screenshots of every main page go
to test-artifacts/screenshots/ for a human to look at.

Debian's Chromium drives it (`apt-get install chromium`); Playwright never
downloads a browser of its own. Without /usr/bin/chromium the test skips.
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User

from gallery.models import (
    PHOTOGRAPHERS_GROUP,
    AttendeeProfile,
    Event,
    Match,
    Membership,
    Photo,
    PhotoStatus,
    Selfie,
)
from gallery.uploads import accept_uploads
from processing.tasks import process_photos
from tests.cluster import REPO, subprocess_env
from tests.conftest import png_upload
from tests.fakes import scene_png
from testsupport.browser import PHONE, browser_session, launch_chromium, screenshot

pytestmark = pytest.mark.slow

# The guest is marker person 0: in p0 and p3, not in p1 and p2.
SCENES = {"p0.png": [0, 1], "p1.png": [1], "p2.png": [2, 3], "p3.png": [0]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server_url(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """`manage.py runserver` on the test database and media, with the marker backend."""
    port = free_port()
    log_path = tmp_path / "runserver.log"
    env = subprocess_env(FACE_BACKEND="tests.fakes.FakeBackend", DEBUG="false")
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"runserver did not start:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Chromium page with a phone viewport, touch and a phone user agent."""
    with browser_session(monkeypatch) as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            accept_downloads=True,
            user_agent="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Mobile Safari/537.36",
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def processed_event(transactional_db: None, fake_backend: Any) -> Event:
    """An event whose photos the marker backend processed in this process."""
    # The server hashes with the real settings, not the tests' fast MD5 hasher.
    hasher = PBKDF2PasswordHasher()
    owner = User.objects.create(username="studio", password=hasher.encode("Studio-pass-2024", hasher.salt()))
    owner.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    event = Event.objects.create(owner=owner, name="Summer Wedding")
    uploads = [png_upload(name, scene_png(people, seed=i)) for i, (name, people) in enumerate(SCENES.items())]
    accepted, rejected = accept_uploads(event, owner, uploads)
    assert not rejected
    process_photos([a.photo.pk for a in accepted])
    assert set(Photo.objects.filter(event=event).values_list("status", flat=True)) == {PhotoStatus.DONE}
    return event


def assert_no_password_field(page: Any) -> None:
    assert page.locator("input[type=password]").count() == 0, f"a password field on {page.url}"


def assert_fits_the_phone(page: Any) -> None:
    """Nothing scrolls sideways on a phone."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the phone"


def assert_images_loaded(page: Any) -> None:
    # Lazy images load once scrolled to; the grid is short, so one scroll does it.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_function("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
    assert page.evaluate("[...document.images].every(img => img.alt.trim().length > 0)")
    page.evaluate("window.scrollTo(0, 0)")


def test_guest_flow_on_a_phone(live_server_url: str, processed_event: Event, browser_page: Any) -> None:
    page, event, base = browser_page, processed_event, live_server_url
    from playwright.sync_api import expect

    # 1. The QR code's link: the event's name and one button, no account to make.
    page.goto(f"{base}/e/{event.code}/")
    expect(page.get_by_role("heading", name="Summer Wedding")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert_no_password_field(page)
    assert_fits_the_phone(page)
    screenshot(page, "01-event-page")
    assert not Membership.objects.filter(event=event).exists(), "opening the link joined"

    # 2. One tap makes a guest, without a username or a password.
    page.get_by_role("button", name="Find my photos").click()

    # 3. Consent in plain words.
    expect(page.get_by_role("heading", name="Before your selfie")).to_be_visible()
    assert_no_password_field(page)
    for text in ("What we store", "Why", "For how long", "How to delete it"):
        expect(page.get_by_text(text, exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"for \d+ days"))).to_be_visible()
    assert_fits_the_phone(page)
    screenshot(page, "03-consent")
    page.get_by_label(re.compile("I agree that photoevent stores")).check()
    page.get_by_role("button", name="I agree, continue").click()

    # 4. The selfie, from a file.
    expect(page.get_by_role("heading", name="Take a selfie")).to_be_visible()
    assert_no_password_field(page)
    selfie_input = page.get_by_label("Your selfie")
    assert selfie_input.get_attribute("capture") == "user"
    assert selfie_input.get_attribute("accept") == "image/*"
    assert_fits_the_phone(page)
    screenshot(page, "04-selfie")
    selfie_input.set_input_files({"name": "me.png", "mimeType": "image/png", "buffer": scene_png([0])})
    page.get_by_role("button", name="Find my photos").click()

    # 5. My photos.
    expect(page.get_by_text("Done: we found you in 2 photos.")).to_be_visible()
    assert_no_password_field(page)
    expect(page.get_by_role("heading", name="Summer Wedding")).to_be_visible()
    thumbnails = page.locator("ul.grid img")
    expect(thumbnails).to_have_count(2)
    assert {thumbnails.nth(i).get_attribute("loading") for i in range(2)} == {"lazy"}
    assert_images_loaded(page)
    assert_fits_the_phone(page)
    screenshot(page, "05-my-photos")
    guest = User.objects.get(memberships__event=event)
    assert not guest.has_usable_password()
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert session_cookie["httpOnly"]
    assert session_cookie["expires"] > time.time() + 29 * 24 * 3600
    mine = set(Match.objects.filter(user=guest).values_list("photo__filename", flat=True))
    assert mine == {"p0.png", "p3.png"}

    # 6. One photo at web size, and its original.
    thumbnails.first.click()
    photo_image = page.locator("figure.photo img")
    expect(photo_image).to_have_attribute("alt", "Photo from Summer Wedding, one you are in")
    assert_images_loaded(page)
    assert_fits_the_phone(page)
    screenshot(page, "06-photo")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download original").click()
    download = download_info.value
    photo = Photo.objects.get(event=event, filename=download.suggested_filename)
    with photo.original.open("rb") as stored:
        assert Path(download.path()).read_bytes() == stored.read()

    # 7. Everything as one ZIP.
    page.get_by_role("link", name="← Back to the photos").click()
    with page.expect_download() as zip_info:
        page.get_by_role("link", name=re.compile("Download all")).click()
    archive = zipfile.ZipFile(io.BytesIO(Path(zip_info.value.path()).read_bytes()))
    assert sorted(name.split("-", 1)[1] for name in archive.namelist()) == ["p0.png", "p3.png"]
    assert zip_info.value.suggested_filename == "summer-wedding-my-photos.zip"

    # 8. Delete my face data.
    page.get_by_role("link", name="Face data").first.click()
    expect(page.get_by_role("heading", name="Your face data")).to_be_visible()
    expect(page.get_by_text("1 selfie with its face template")).to_be_visible()
    assert_fits_the_phone(page)
    screenshot(page, "07-face-data")
    page.get_by_role("button", name="Delete my face data").click()
    expect(page.get_by_role("heading", name="Your face data is deleted")).to_be_visible()
    expect(page.get_by_text("1 selfie (the photo of your face)")).to_be_visible()
    expect(page.get_by_text("2 links to photos you were found in, in 1 event")).to_be_visible()
    assert_fits_the_phone(page)
    screenshot(page, "08-face-data-deleted")
    assert not Selfie.objects.filter(user=guest).exists()
    assert not Match.objects.filter(user=guest).exists()
    assert AttendeeProfile.objects.get(user=guest).face_consent_at is None

    # Without consent the guest still browses the event's photos.
    page.goto(f"{base}/events/{event.pk}/all/")
    expect(page.locator("ul.grid img")).to_have_count(4)
    assert_images_loaded(page)
    screenshot(page, "09-all-photos-after-deletion")

    # An email address for alerts and sign-in links, on the account page.
    page.get_by_role("link", name="Account").first.click()
    page.get_by_label("Email address").fill("guest@example.com")
    page.get_by_label("Email me when new photos of me arrive").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("We will email you when new photos of you arrive")).to_be_visible()
    assert_fits_the_phone(page)
    screenshot(page, "11-account")
    guest.refresh_from_db()
    assert guest.email == "guest@example.com"

    # The photographer's side of the link: the event page with its QR code.
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/login/?next=/studio/events/{event.pk}/")
    page.get_by_label("Username").fill("studio")
    page.get_by_label("Password").fill("Studio-pass-2024")
    page.get_by_role("button", name="Log in").click()
    qr_image = page.get_by_role("img", name=re.compile("QR code that opens"))
    expect(qr_image).to_be_visible()
    assert_images_loaded(page)
    assert_fits_the_phone(page)
    screenshot(page, "10-studio-event")
