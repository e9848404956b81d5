""" "Not me", "that's me" and the photo page in a real browser on a phone-sized screen.

A guest logged in on `runserver` (test database, marker backend) hides a
stranger the matcher gave them, and the photo stays hidden after it is
processed again; claims a photo by tapping their face; steps through their
photos with the buttons and the arrow keys. Screenshots go to artifacts/
(git-ignored). Debian's Chromium drives it; without it the test skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group, User
from django.utils import timezone

from gallery.models import PHOTOGRAPHERS_GROUP, AttendeeProfile, Event, Match, Membership, Photo
from gallery.uploads import accept_uploads
from processing import services, tasks
from tests.conftest import png_upload
from tests.correction_scenes import FIRST, scene_file
from tests.fakes import scene_png
from tests.gallery.test_guest_flow_browser import assert_fits_the_phone
from testsupport.browser import PHONE, browser_session, launch_chromium, screenshot
from testsupport.processes import Proc

pytestmark = pytest.mark.slow

GUEST_PASSWORD = "Evening-pass-2024"


@pytest.fixture
def scene(transactional_db: None, scene_backend: Any) -> Iterator[tuple[Event, User, dict[str, Photo]]]:
    """The correction scene processed in this process, and a guest whose selfie matched it."""
    hasher = PBKDF2PasswordHasher()  # the server hashes with the real settings
    owner = User.objects.create(username="studio", password=hasher.encode("Studio-pass-2024", hasher.salt()))
    owner.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
    event = Event.objects.create(owner=owner, name="Summer Wedding")
    files = [png_upload(name, scene_file(name, seed=i)) for i, name in enumerate(FIRST)]
    accepted, rejected = accept_uploads(event, owner, files, enqueue=False)
    assert not rejected
    tasks.process_photos([a.photo.pk for a in accepted])
    guest = User.objects.create(username="guest", password=hasher.encode(GUEST_PASSWORD, hasher.salt()))
    AttendeeProfile.objects.create(user=guest, face_consent_at=timezone.now())
    Membership.objects.create(user=guest, event=event)
    services.enrol_selfie(guest, png_upload("me.png", scene_png([0])))
    yield event, guest, {p.filename: p for p in Photo.objects.filter(event=event)}


@pytest.fixture
def phone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Chromium page with a phone viewport and touch."""
    with browser_session(monkeypatch) as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
        context.set_default_timeout(15_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def log_in(page: Any, base: str, event: Event) -> None:
    """Log the guest in, landing on their photos of `event`."""
    page.goto(f"{base}/login/?next=/events/{event.pk}/")
    page.locator("input[name=username]").fill("guest")
    page.locator("input[name=password]").fill(GUEST_PASSWORD)
    page.locator("form[method=post]:not(.languages) button[type=submit]").last.click()
    page.wait_for_url(f"{base}/events/{event.pk}/")


def my_photo_ids(page: Any) -> set[int]:
    hrefs = page.locator("ul.grid li > a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return {int(href.split("/")[2]) for href in hrefs}


def test_not_me_thats_me_and_stepping_through_photos(
    scene: tuple[Event, User, dict[str, Photo]], start_server: Callable[..., Proc], phone: Any
) -> None:
    from playwright.sync_api import expect

    event, guest, photos = scene
    server = start_server(DEBUG="false")
    page, base = phone, server.url
    ids = {name: photo.pk for name, photo in photos.items()}
    mine_url = f"{base}/events/{event.pk}/"

    log_in(page, base, event)
    assert my_photo_ids(page) == {ids[n] for n in ("a1.png", "a2.png", "a3.png", "x1.png", "x2.png")}
    assert_fits_the_phone(page)
    screenshot(page, "corrections-01-my-photos")

    # "Not me" on the stranger: he goes, with his look-alike.
    page.locator(f"form[action='/photos/{ids['x1.png']}/not-me/'] button").click()
    page.wait_for_url(mine_url)
    expect(page.locator(f"ul.grid a[href^='/photos/{ids['x1.png']}/']")).to_have_count(0)
    assert my_photo_ids(page) == {ids[n] for n in ("a1.png", "a2.png", "a3.png")}
    screenshot(page, "corrections-02-after-not-me")

    # Processed again (new faces), the photo stays hidden.
    old_faces = set(photos["x1.png"].faces.values_list("pk", flat=True))
    assert services.requeue_photo(photos["x1.png"], only_failed=False)
    assert set(photos["x1.png"].faces.values_list("pk", flat=True)).isdisjoint(old_faces)
    page.reload()
    assert my_photo_ids(page) == {ids[n] for n in ("a1.png", "a2.png", "a3.png")}
    page.goto(f"{base}/events/{event.pk}/hidden/")
    expect(page.locator(f"form[action='/photos/{ids['x1.png']}/not-me/undo/']")).to_have_count(1)
    screenshot(page, "corrections-03-hidden-photos")

    # "That's me" on a photo with two people: the guest taps their face on the photo.
    page.goto(f"{base}/events/{event.pk}/all/")
    screenshot(page, "corrections-04-all-photos")
    page.locator(f"form[action='/photos/{ids['y1.png']}/me/'] button").click()
    face_boxes = page.locator("button.face-box")
    expect(face_boxes).to_have_count(2)
    assert_fits_the_phone(page)
    screenshot(page, "corrections-05-pick-your-face")
    left_box = min(range(2), key=lambda i: face_boxes.nth(i).bounding_box()["x"])
    face_boxes.nth(left_box).click()
    page.wait_for_url(f"{base}/events/{event.pk}/all/")
    page.goto(mine_url)
    assert {ids["y1.png"], ids["y2.png"]} <= my_photo_ids(page)
    chosen = Match.objects.get(user=guest, photo=photos["y1.png"]).face
    assert chosen == photos["y1.png"].faces.order_by("left").first()
    screenshot(page, "corrections-06-after-thats-me")

    # The photo page: next and previous within my photos, by button and by arrow key.
    order = [link.split("/")[2] for link in page.locator("ul.grid li > a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )]  # fmt: skip
    page.locator("ul.grid li > a").first.click()
    expect(page.locator("figure.photo img")).to_be_visible()
    assert_fits_the_phone(page)
    screenshot(page, "corrections-07-photo-page")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/photos/{order[1]}/**")
    page.locator("a[rel=next]").click()
    page.wait_for_url(f"**/photos/{order[2]}/**")
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(f"**/photos/{order[1]}/**")
    page.locator("a[rel=prev]").click()
    page.wait_for_url(f"**/photos/{order[0]}/**")
    expect(page.locator("a[rel=prev]")).to_have_count(0)
    # A swipe to the left on the photo shows the next one.
    page.wait_for_load_state("load")
    page.evaluate(SWIPE_LEFT)
    page.wait_for_url(f"**/photos/{order[1]}/**")


# A finger moving 200 px to the left across the photo.
SWIPE_LEFT = """() => {
  const figure = document.querySelector("figure.photo");
  const touch = (x) => new Touch({identifier: 1, target: figure, clientX: x, clientY: 300});
  figure.dispatchEvent(new TouchEvent("touchstart", {touches: [touch(300)], changedTouches: [touch(300)]}));
  figure.dispatchEvent(new TouchEvent("touchend", {touches: [], changedTouches: [touch(100)]}));
}"""


def test_is_this_you_on_a_phone(
    scene: tuple[Event, User, dict[str, Photo]], start_server: Callable[..., Proc], phone: Any
) -> None:
    from playwright.sync_api import expect

    event, _, photos = scene
    # The scene's look-alike is 0.38 from the selfie, the guest's own faces 0.2: he is asked about from 0.3.
    server = start_server(DEBUG="false", FACE_REVIEW_DISTANCE="0.3")
    page, base = phone, server.url
    ids = {name: photo.pk for name, photo in photos.items()}
    mine_url = f"{base}/events/{event.pk}/"

    log_in(page, base, event)
    review = page.locator("section.review")
    expect(review.get_by_role("heading", name="Is this you?")).to_be_visible()
    expect(review.locator("img")).to_have_count(2)
    assert_fits_the_phone(page)
    screenshot(page, "review-01-is-this-you")

    # "Not me" on the first face: both of the look-alike's photos go, and nothing is left to ask.
    review.locator(f"form[action='/photos/{ids['x1.png']}/not-me/'] button").click()
    page.wait_for_url(mine_url)
    expect(page.locator("section.review")).to_have_count(0)
    assert my_photo_ids(page) == {ids[n] for n in ("a1.png", "a2.png", "a3.png")}
    screenshot(page, "review-02-after-not-me")
