"""The studio's browser upload in Chromium: ten files, one HEIC and one corrupt, through a busy server.

The pages carry the site's strict Content-Security-Policy (`'self'` only), so
an inline script or style would show as a violation in the console. The first
upload request is answered 503 with Retry-After (the queue is full); the
second reaches the server, which stores its files, but its answer is lost (the
connection drops). The page must wait, send both again,
and end with 9 accepted (none stored twice) and 1 rejected with its reason.

Debian's Chromium drives it; without /usr/bin/chromium the test skips.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from PIL import Image

from gallery.models import PHOTOGRAPHERS_GROUP, Event, Photo
from tests.fakes import scene_png
from tests.gallery.test_guest_flow_browser import browser_page, live_server_url  # noqa: F401 (fixtures)
from testsupport.heic import heic_bytes

pytestmark = pytest.mark.slow

PASSWORD = "Studio-pass-2024"


def assert_strict_policy(response: Any) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy, policy


@pytest.fixture
def studio_event(transactional_db: None) -> Event:
    # The server hashes with the real settings, not the tests' fast MD5 hasher.
    hasher = PBKDF2PasswordHasher()
    owner = User.objects.create(username="studio", password=hasher.encode(PASSWORD, hasher.salt()))
    owner.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    return Event.objects.create(owner=owner, name="Gala")


def ten_files(folder: Path) -> list[Path]:
    """Eight PNG and JPEG photos, one HEIC and one corrupt JPEG, all different."""
    files = []
    for i in range(8):
        data = scene_png([i % 4], seed=i)
        if i % 2:
            buffer = io.BytesIO()
            Image.open(io.BytesIO(data)).convert("RGB").save(buffer, "JPEG", quality=90)
            files.append((f"photo-{i}.jpg", buffer.getvalue()))
        else:
            files.append((f"photo-{i}.png", data))
    files.insert(4, ("IMG_0042.HEIC", heic_bytes(scene_png([1, 2], seed=42))))
    files.insert(7, ("broken.jpg", b"\xff\xd8\xff\xe0 this is not really a photo " * 40))
    paths = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def test_browser_upload_of_ten_files(
    live_server_url: str,  # noqa: F811
    studio_event: Event,
    browser_page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    page, base, event = browser_page, live_server_url, studio_event
    page_url = f"{base}/studio/events/{event.pk}/"
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )

    upload_calls: list[str] = []

    def busy_then_lost(route: Any) -> None:
        upload_calls.append(route.request.method)
        if len(upload_calls) == 1:
            route.fulfill(
                status=503,
                headers={"Retry-After": "2", "Content-Type": "application/json"},
                body='{"detail": "Queue is full, try again later"}',
            )
        elif len(upload_calls) == 2:
            route.fetch()  # the server stores the files ...
            route.abort("connectionreset")  # ... and the answer never reaches the page
        else:
            route.continue_()

    page.route(f"{base}/api/photographer/events/{event.pk}/upload-photos", busy_then_lost)

    page.goto(f"{base}/login/?next=/studio/events/{event.pk}/")
    page.get_by_label("Username").fill("studio")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Gala")).to_be_visible()
    expect(page.locator("#upload-submit")).to_be_hidden()  # the script took over the form

    files = ten_files(tmp_path)
    page.set_input_files("#upload-input", [str(path) for path in files])
    rows = page.locator("#upload-files li")
    expect(rows).to_have_count(10)
    expect(page.locator("#upload-files")).to_contain_text("retrying in")

    expect(page.locator("#upload-status")).to_have_attribute("data-state", "finished", timeout=60_000)
    expect(page.locator("#upload-files li.accepted")).to_have_count(9)
    rejected = page.locator("#upload-files li.rejected")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("broken.jpg")
    expect(rejected).to_contain_text("Rejected: The image is damaged or truncated")
    assert page.locator("#upload-files li.duplicate").count() == 0
    assert page.eval_on_selector("#upload-overall", "bar => bar.value === bar.max")
    assert page.eval_on_selector_all("#upload-files progress", "bars => bars.every(bar => bar.value === bar.max)")
    expect(page.locator("#upload-summary")).to_contain_text("10 of 10 files answered: 9 accepted, 1 rejected")
    assert len(upload_calls) >= 4, upload_calls  # two batches, each sent twice

    photos = Photo.objects.filter(event=event)
    assert photos.count() == 9, "a file sent twice is stored once"
    assert photos.filter(format="HEIF", filename="IMG_0042.HEIC").exists()

    # Coming back later: the page lists what arrived.
    assert_strict_policy(page.goto(page_url))
    grid = page.locator("ul.grid")
    for path in files:
        if path.name != "broken.jpg":
            expect(grid).to_contain_text(path.name)
    assert violations == [], violations


def test_the_api_docs_page_renders_under_the_strict_policy(
    live_server_url: str,  # noqa: F811
    browser_page: Any,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    page, base = browser_page, live_server_url
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )

    assert_strict_policy(page.goto(f"{base}/api/docs/"))
    expect(page.get_by_text("/api/photographer/events/{event_id}/upload-photos")).to_be_visible(timeout=30_000)
    assert violations == [], violations
