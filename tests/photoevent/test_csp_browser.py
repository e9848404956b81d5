"""The admin and the studio under the Content-Security-Policy, in a real browser.

Chromium reports every script, style or form the policy refuses on its
console; the pages are used (log in, run an admin action, look at a photo's
face boxes and the progress bar) and no refusal may appear. Debian's Chromium
drives it, as in tests/gallery/test_guest_flow_browser.py; without it the test skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User

from gallery.models import PHOTOGRAPHERS_GROUP, Event, Photo, PhotoStatus
from gallery.uploads import accept_uploads
from processing.tasks import process_photos
from tests.conftest import png_upload
from tests.fakes import scene_png
from testsupport.browser import browser_session, launch_chromium
from testsupport.processes import Proc

pytestmark = pytest.mark.slow

PASSWORD = "Browser-pass-2024"


def server_user(username: str, *, staff: bool = False, photographer: bool = False) -> User:
    # The server hashes with the real settings, not the tests' fast MD5 hasher.
    hasher = PBKDF2PasswordHasher()
    user = User.objects.create(
        username=username,
        password=hasher.encode(PASSWORD, hasher.salt()),
        is_staff=staff,
        is_superuser=staff,
    )
    if photographer:
        user.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    return user


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with browser_session(monkeypatch) as playwright:
        launched = launch_chromium(playwright)
        try:
            yield launched
        finally:
            launched.close()


class Refusals:
    """Every message in which the browser says the policy refused something."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.messages.append(f"{message.page.url if message.page else ''}: {message.text}")


def new_page(browser: Any) -> tuple[Any, Refusals]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    return page, Refusals(page)


def log_in(page: Any, url: str, username: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    # The login form's own button, not the footer's language buttons.
    page.locator("form:not(.languages) input[type=submit], form:not(.languages) button[type=submit]").last.click()
    page.wait_for_load_state()
    assert "login" not in page.url, f"still on {page.url} after logging in at {url}"


def same_box(page: Any, first: str, second: str) -> bool:
    boxes = [page.locator(selector).first.bounding_box() for selector in (first, second)]
    assert all(boxes), (first, second, boxes)
    return all(abs(boxes[0][key] - boxes[1][key]) < 2 for key in ("x", "y", "width", "height"))


def test_the_admin_and_the_studio_work_under_the_policy(
    start_server: Callable[..., Proc], browser: Any, fake_backend: Any
) -> None:
    photographer = server_user("studio", photographer=True)
    server_user("admin", staff=True)
    event = Event.objects.create(owner=photographer, name="Summer Wedding")
    accepted, rejected = accept_uploads(event, photographer, [png_upload("p0.png", scene_png([0, 1]))])
    assert not rejected
    process_photos([a.photo.pk for a in accepted])
    photo = Photo.objects.get(pk=accepted[0].photo.pk)
    assert photo.status == PhotoStatus.DONE and photo.faces.count() == 2
    server = start_server()
    base = server.url

    page, refusals = new_page(browser)
    # The listener hears a refusal: an inline style added on purpose.
    page.goto(f"{base}/admin/login/")
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>')")
    page.wait_for_timeout(200)
    assert refusals.messages, "the browser reported no refusal of a deliberate inline style"
    refusals.messages.clear()

    log_in(page, f"{base}/admin/login/", "admin")
    page.goto(f"{base}/admin/")
    assert page.locator("p.operations a").count() == 1
    # A change list with its actions: the script counts the selected rows.
    page.goto(f"{base}/admin/gallery/photo/")
    page.locator("input.action-select").first.check()
    assert "1 of 1" in page.locator(".action-counter").inner_text()
    page.select_option("select[name=action]", "reprocess")
    page.locator("button[name=index]").click()
    page.wait_for_load_state()
    assert "re-queued" in page.locator("ul.messagelist").inner_text()
    # The photo with its face boxes drawn over it by the admin's stylesheet.
    page.goto(f"{base}/admin/gallery/photo/{photo.pk}/change/")
    assert page.locator(".photo-preview rect").count() == 2
    page.wait_for_function("() => document.querySelector('.photo-preview img').complete")
    assert same_box(page, ".photo-preview img", ".photo-preview svg")
    page.goto(f"{base}/admin/monitoring/")
    assert page.locator("h2").count() >= 2
    assert not refusals.messages, "\n".join(refusals.messages)

    page, refusals = new_page(browser)
    page.goto(f"{base}/login/")
    log_in(page, f"{base}/login/", "studio")
    page.goto(f"{base}/studio/events/{event.pk}/")
    # The progress bar: an SVG filling the bar, its rect as wide as the share done.
    assert same_box(page, ".progress", ".progress svg")
    assert page.locator(".progress rect").get_attribute("width") in {"0", "100"}
    page.goto(f"{base}/studio/")
    assert not refusals.messages, "\n".join(refusals.messages)
