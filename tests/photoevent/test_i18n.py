"""French and English everywhere: complete catalogues, every page in both languages, the footer's switcher.

The French check is two-sided: (a) every catalogue entry has a translation, and
(b) no page rendered for `Accept-Language: fr` shows the English text of an
entry whose French differs. The English pages are held to the mirror image.
A string added to the code but not yet to the catalogue fails
`test_catalogues_hold_every_string_of_the_code`: `bash scripts/messages` adds it.
"""

from __future__ import annotations

import html
import re
import runpy
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Any

import polib
import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils import translation

from gallery.alerts import digest_message, unsubscribe_url
from gallery.checks import check_message_catalogues
from gallery.models import AlertDelivery, Event, EventVisibility, Photo
from photoevent import settings as project_settings
from tests.conftest import png_upload
from tests.fakes import scene_png
from tests.gallery.conftest import selfie_file
from tests.gallery.test_guest_flow_browser import (  # noqa: F401 (fixtures of the phone test)
    browser_page,
    live_server_url,
    processed_event,
)
from testsupport.browser import screenshot
from testsupport.paths import REPO

pytestmark = pytest.mark.django_db

LOCALE = REPO / "locale"
LANGUAGES = ("fr", "en")
# Where scripts/messages looks for strings (it ignores tests, bench, clients, ...).
SOURCES = ("gallery", "processing", "photoevent", "templates", "manage.py")
# Placeholders and markup split a msgid into the literal pieces a page can show.
PLACEHOLDER_OR_TAG = re.compile(r"%\(\w+\)[sd]|<[^>]*>")
# Attributes whose values people read (or hear, with a screen reader).
READ_ATTRIBUTES = {"alt", "title", "aria-label", "placeholder"}


def catalogue(language: str) -> polib.POFile:
    return polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))


# --- (a) the catalogues ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "po_path", sorted(LOCALE.glob("*/LC_MESSAGES/*.po")), ids=lambda path: f"{path.parts[-3]}/{path.name}"
)
def test_catalogue_is_complete_and_compiled(po_path):
    language = po_path.parts[-3]
    assert language in LANGUAGES, f"{po_path}: not one of LANGUAGES"
    po = polib.pofile(str(po_path))
    assert po.metadata["Language"] == language
    untranslated = [entry.msgid for entry in po.untranslated_entries()]
    fuzzy = [entry.msgid for entry in po.fuzzy_entries()]
    assert not untranslated, f"{po_path}: entries without a translation (fill them in): {untranslated}"
    assert not fuzzy, f"{po_path}: fuzzy entries (check the translation, then drop the fuzzy flag): {fuzzy}"
    assert not po.obsolete_entries(), f"{po_path}: obsolete entries; run bash scripts/messages"
    mo = po_path.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= po_path.stat().st_mtime, (
        f"{mo} is missing or older than its .po: run bash scripts/messages compile (scripts/test does)"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_both_catalogues_exist(language):
    assert len(catalogue(language)) > 200, f"the {language} catalogue lost its entries"


def test_french_uses_vous_and_keeps_placeholders():
    for entry in catalogue("fr"):
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert not re.search(r"\b(tu|toi|ton|ta|tes)\b", text), f"tutoiement in {text!r}"
            expected = sorted(set(re.findall(r"%\(\w+\)[sd]", entry.msgid)))
            assert sorted(set(re.findall(r"%\(\w+\)[sd]", text))) == expected, f"placeholders differ in {text!r}"


def test_catalogues_hold_every_string_of_the_code(tmp_path):
    """makemessages on a copy of the sources finds no msgid that the repository's catalogues lack."""
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    shutil.copytree(LOCALE, tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "django-admin"), "makemessages", "-l", "fr", "--no-obsolete", "-v0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    fresh = polib.pofile(str(tmp_path / "locale" / "fr" / "LC_MESSAGES" / "django.po"))
    new = [entry.msgid for entry in fresh if not entry.translated() or "fuzzy" in entry.flags]
    assert not new, f"strings of the code missing from the catalogues; run bash scripts/messages and translate: {new}"


# --- the pages ---------------------------------------------------------------------------------


class ReadableText(HTMLParser):
    """The text a visitor reads on a page: text nodes, READ_ATTRIBUTES, submit values, sentences in data-*."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        shown_value = tag == "input" and dict(attrs).get("type") in ("submit", "button")
        for name, value in attrs:
            # Scripts show the sentences that pages hand them in data-* attributes.
            sentence_for_script = name.startswith("data-") and " " in (value or "")
            if value and (name in READ_ATTRIBUTES or (shown_value and name == "value") or sentence_for_script):
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def readable_text(page: str) -> str:
    parser = ReadableText()
    parser.feed(page)
    return "\n".join(parser.parts)


def left_untranslated(text: str, source_language: str, target_language: str) -> list[str]:
    """Pieces of `source_language` strings, translated otherwise in `target_language`, that `text` shows."""
    target = {(entry.msgctxt, entry.msgid): entry for entry in catalogue(target_language)}
    found = []
    for entry in catalogue(source_language):
        other = target[(entry.msgctxt, entry.msgid)]
        pairs = (
            [(entry.msgstr_plural[i], other.msgstr_plural[i]) for i in entry.msgstr_plural]
            if entry.msgid_plural
            else [(entry.msgstr, other.msgstr)]
        )
        for shown, wanted in pairs:
            if shown == wanted:
                continue
            for piece in PLACEHOLDER_OR_TAG.split(html.unescape(shown)):
                piece = piece.strip(" ,.:;()!?«»\n")
                # "s", "ms" and kept words (JPEG, AWS) say nothing about the language.
                if len(re.findall(r"[^\W\d_]", piece)) < 3 or piece in html.unescape(wanted):
                    continue
                if re.search(rf"(?<!\w){re.escape(piece)}(?!\w)", text):
                    found.append(piece)
    return sorted(set(found))


@dataclass
class World:
    anonymous: Client
    guest: Client
    photographer: Client
    event: Event
    photo: Photo
    leaver: Client
    own_event: Event
    guest_id: int


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(
    client_for, photographer, member, make_user, event, fake_backend, django_capture_on_commit_callbacks
) -> World:
    """An event with processed photos, a guest found in some of them, a second guest, the photographer."""
    event.date = date(2026, 6, 20)
    event.save(update_fields=["date"])
    scenes = {"p0.png": [0, 1], "p1.png": [1], "p2.png": [0]}
    files = [png_upload(name, scene_png(people, seed=i)) for i, (name, people) in enumerate(scenes.items())]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
        )
    assert response.status_code == 202
    photo = Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])
    guest = logged_in(member)
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = guest.post(reverse("gallery-selfie"), {"selfie": selfie_file([0]), "next": "/"})
    assert enrolled.status_code == 302
    guest.get("/")  # shows, and so drops, the selfie's message, written in the language of that request
    leaver = make_user("leaver")
    event.memberships.create(user=leaver)
    # An own-photos-only event asks for a live selfie before it shows the guest's photos.
    own_event = Event.objects.create(owner=photographer, name="Gala", visibility=EventVisibility.OWN)
    own_event.memberships.create(user=member)
    return World(Client(), guest, logged_in(photographer), event, photo, logged_in(leaver), own_event, member.pk)


def pages(world: World) -> list[tuple[str, Client, str, int, str]]:
    """(name, client, url, status, a piece of the page's own content) for every page of the site."""
    event, photo = world.event, world.photo
    my_photos = reverse("gallery-my-photos", args=[event.pk])
    join = reverse("gallery-join-link", args=[event.code])
    return [
        ("home", world.anonymous, "/", 200, "Find your event photos"),
        ("home with events", world.guest, "/", 200, "Your events"),
        ("join", world.anonymous, join, 200, "Wedding"),
        ("unknown code", world.anonymous, reverse("gallery-join-link", args=["NOPE2345"]), 404, "Enter a code"),
        ("consent", world.guest, f"{reverse('gallery-consent')}?next={my_photos}", 200, "Before your selfie"),
        ("selfie", world.guest, f"{reverse('gallery-selfie')}?next={my_photos}", 200, "Take a selfie"),
        ("my photos", world.guest, my_photos, 200, "My photos"),
        ("hidden photos", world.guest, reverse("gallery-hidden-photos", args=[event.pk]), 200, "Hidden photos"),
        ("studio people", world.photographer, reverse("gallery-studio-event-people", args=[event.pk]), 200, "People"),
        (
            "studio quality",
            world.photographer,
            reverse("gallery-studio-event-quality", args=[event.pk]),
            200,
            "Matching quality",
        ),
        ("my photos, no selfie", world.leaver, my_photos, 200, "Take a selfie to find the photos you are in."),
        ("all photos", world.guest, reverse("gallery-all-photos", args=[event.pk]), 200, "All photos"),
        (
            "my photos, live selfie needed",
            world.guest,
            reverse("gallery-my-photos", args=[world.own_event.pk]),
            200,
            "Verify with your camera",
        ),
        (
            "all photos, live selfie needed",
            world.guest,
            reverse("gallery-all-photos", args=[world.own_event.pk]),
            200,
            "Verify with your camera",
        ),
        (
            "live selfie",
            world.guest,
            f"{reverse('gallery-live-selfie')}?next={reverse('gallery-my-photos', args=[world.own_event.pk])}",
            200,
            "Start the camera",
        ),
        ("photo", world.guest, reverse("gallery-photo", args=[photo.pk]), 200, "Download original"),
        ("face data", world.guest, reverse("gallery-face-data"), 200, "Delete my face data"),
        ("delete account", world.guest, reverse("gallery-delete-account"), 200, "Your password, to confirm"),
        ("studio", world.photographer, reverse("gallery-studio"), 200, "Create event"),
        (
            "studio event",
            world.photographer,
            reverse("gallery-studio-event", args=[event.pk]),
            200,
            "Share with guests",
        ),
        (
            "studio photo delete",
            world.photographer,
            reverse("gallery-studio-photo-delete", args=[photo.pk]),
            200,
            "Delete this photo?",
        ),
        (
            "studio event delete",
            world.photographer,
            reverse("gallery-studio-event-delete", args=[event.pk]),
            200,
            "Delete the event",
        ),
        ("login", world.anonymous, f"{reverse('login')}?next={join}", 200, "Log in"),
        ("account", world.guest, reverse("gallery-account"), 200, "Email and alerts"),
        ("email me a link", world.anonymous, f"{reverse('gallery-email-link')}?next={join}", 200, "Send me the link"),
        ("sign in with a link", world.anonymous, f"{reverse('gallery-sign-in-link')}?sesame=x", 200, "Sign in"),
        (
            "sign-in link used up",
            world.anonymous,
            reverse("gallery-sign-in-link"),
            200,
            "This link does not work any more: links work once and only for a few minutes.",
        ),
        ("unsubscribe", world.anonymous, unsubscribe_url(world.guest_id), 200, "Unsubscribe"),
        (
            "unsubscribe, bad link",
            world.anonymous,
            reverse("gallery-unsubscribe", args=["nonsense"]),
            400,
            "This unsubscribe link is not valid. Copy the whole link from the email.",
        ),
        ("sign-up", world.anonymous, f"{reverse('signup')}?next={join}", 200, "Password again"),
        ("403", world.guest, reverse("gallery-studio-event", args=[event.pk]), 403, "Not allowed"),
        ("404", world.anonymous, "/no-such-page/", 404, "We could not find that page. Check the link or the code."),
    ]


def translated(message: str, language: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


@pytest.fixture(autouse=True)
def back_to_default_language():
    # The test client's requests activate their language in this thread; the
    # rest of the suite expects the default again.
    yield
    translation.deactivate()


def render_all(world: World, language: str) -> dict[str, str]:
    """Every page as `language` asks for it, checked for status, language and its own content."""
    rendered = {}
    for name, client, url, status, content in pages(world):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
        assert response.status_code == status, f"{name}: {response.status_code}"
        page = response.content.decode()
        assert f'<html lang="{language}">' in page, name
        assert translated(content, language) in html.unescape(page), f"{name} does not show its content"
        rendered[name] = page
    # The deletion summary exists only right after a deletion.
    response = world.leaver.post(reverse("gallery-face-data"), HTTP_ACCEPT_LANGUAGE=language, follow=True)
    assert response.redirect_chain[-1][0] == reverse("gallery-deleted")
    page = response.content.decode()
    assert translated("Your face data is deleted", language) in page
    rendered["deleted"] = page
    # Pages that answer a form: the link sent, the alerts stopped.
    sent = world.anonymous.post(
        reverse("gallery-email-link"), {"email": "nobody@example.com"}, HTTP_ACCEPT_LANGUAGE=language
    )
    assert translated("Check your email", language) in html.unescape(sent.content.decode())
    rendered["sign-in link sent"] = sent.content.decode()
    stopped = world.anonymous.post(unsubscribe_url(world.guest_id), HTTP_ACCEPT_LANGUAGE=language)
    assert translated("Emails about new photos", language) in html.unescape(stopped.content.decode())
    rendered["unsubscribed"] = stopped.content.decode()
    return rendered


def test_every_page_is_in_french(world):
    assert translated("Find your event photos", "fr") != "Find your event photos", "the French .mo is not loaded"
    for name, page in render_all(world, "fr").items():
        english = left_untranslated(readable_text(page), "en", "fr")
        assert not english, f"English left on the {name} page: {english}"


def test_every_page_is_in_english(world):
    for name, page in render_all(world, "en").items():
        french = left_untranslated(readable_text(page), "fr", "en")
        assert not french, f"French left on the {name} page: {french}"


def test_the_check_finds_english_left_on_a_page():
    def english(page):
        return left_untranslated(readable_text(page), "en", "fr")

    assert english("<p>Retrouvez vos photos</p><p>Take a selfie</p>") == ["Take a selfie"]
    assert english('<img alt="Photo 3 of you">') == ["of you"]
    assert english('<div data-failed="Something went wrong. Try again." data-next="/events/1/">') == [
        "Something went wrong. Try again",
        "Try again",
    ]
    assert english('<img alt="Photo de vous n° 3"><a href="/events/1/">Mes photos</a>') == []


def test_dates_follow_the_language(world):
    french = world.guest.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    english = world.guest.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "20 juin 2026" in french
    assert "June 20, 2026" in english


# --- emails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_emails_are_in_the_language_the_guest_used(
    world, member, mailoutbox, language, django_capture_on_commit_callbacks
):
    other = "en" if language == "fr" else "fr"
    with django_capture_on_commit_callbacks(execute=True):
        saved = world.guest.post(
            reverse("gallery-account"),
            {"action": "notifications", "email": "guest@example.com", "alerts": "on"},
            HTTP_ACCEPT_LANGUAGE=language,
        )
    assert saved.status_code == 302
    delivery = AlertDelivery.objects.create(
        user=member,
        email="guest@example.com",
        photo_count=2,
        events={str(world.event.pk): 2},
        questions={str(world.event.pk): 1},
    )
    digest = digest_message(delivery)
    with django_capture_on_commit_callbacks(execute=True):
        world.anonymous.post(
            reverse("gallery-email-link"), {"email": "guest@example.com"}, HTTP_ACCEPT_LANGUAGE=language
        )
    assert len(mailoutbox) == 1, "the sign-in email was not sent"
    for message in (digest, mailoutbox[0]):
        text = re.sub(r"https?://\S+", "", f"{message.subject}\n{message.body}")  # links are no text
        assert not left_untranslated(text, other, language), text
    assert translated("See them:", language) in digest.body
    assert {"en": "We are not sure about 1 of", "fr": "1 de vos photos nous laisse un doute"}[language] in digest.body
    assert translated("Hello,", language) in mailoutbox[0].body


# --- choosing the language -----------------------------------------------------------------------


def test_footer_switcher_persists_the_choice(world):
    client = world.anonymous
    home = client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert f'action="{reverse("set_language")}"' in home
    assert 'value="en" lang="en" class="link-button" aria-pressed="false">English</button>' in home
    assert 'value="fr" lang="fr" class="link-button" aria-pressed="true">Français</button>' in home

    join = reverse("gallery-join-link", args=[world.event.code])
    response = client.post(reverse("set_language"), {"language": "en", "next": join}, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 302 and response["Location"] == join
    cookie = response.cookies["django_language"]
    assert cookie.value == "en" and cookie["max-age"] and cookie["httponly"]

    # The browser still asks for French; the choice wins, on every page, until changed.
    assert "Find your event photos" in client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="en">' in client.get(join, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert "Retrouvez vos photos" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_switcher_ignores_other_languages_and_foreign_next(world):
    client = world.anonymous
    response = client.post(reverse("set_language"), {"language": "de", "next": "https://example.com/"})
    assert response.status_code == 302 and response["Location"] == "/"
    # Django keeps a cookie for any language it has a catalogue of; only LANGUAGES count.
    assert 'lang="fr"' in client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert 'lang="en"' in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_language_code_is_the_default(world, settings):
    settings.LANGUAGE_CODE = "fr"
    assert 'lang="fr"' in world.anonymous.get("/").content.decode()
    assert 'lang="fr"' in world.anonymous.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    settings.LANGUAGE_CODE = "en"
    assert 'lang="en"' in world.anonymous.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()


def test_api_details_follow_accept_language(anon_client):
    ours = anon_client.post("/api/auth/token", {}, format="json", HTTP_ACCEPT_LANGUAGE="fr")
    assert ours.status_code == 400
    assert ours.json()["detail"] == "« username » est obligatoire"
    assert anon_client.post("/api/auth/token", {}, format="json").json()["detail"] == "'username' is required"
    # DRF's own messages come with DRF's catalogue.
    drf = anon_client.get("/api/my-photos", HTTP_ACCEPT_LANGUAGE="fr")
    assert drf.status_code in (401, 403)
    assert drf.json()["detail"] == "Informations d'authentification non fournies."


@pytest.mark.parametrize("raw", ["de", "french", "fr-xx"])
def test_language_code_must_be_a_configured_language(monkeypatch, raw):
    monkeypatch.setenv("LANGUAGE_CODE", raw)
    with pytest.raises(ImproperlyConfigured, match="LANGUAGE_CODE"):
        runpy.run_path(project_settings.__file__)


def test_language_code_from_the_environment(monkeypatch):
    monkeypatch.setenv("LANGUAGE_CODE", "EN")
    assert runpy.run_path(project_settings.__file__)["LANGUAGE_CODE"] == "en"
    monkeypatch.delenv("LANGUAGE_CODE")
    assert runpy.run_path(project_settings.__file__)["LANGUAGE_CODE"] == "fr"


def test_a_missing_compiled_catalogue_is_a_system_check_warning(settings, tmp_path):
    assert check_message_catalogues(None) == []
    shutil.copytree(LOCALE, tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    warnings = check_message_catalogues(None)
    assert [m.id for m in warnings] == ["gallery.W010"] and "fr message catalogue" in warnings[0].msg


# --- a phone in French ---------------------------------------------------------------------------


@pytest.mark.slow
def test_guest_evening_in_french_on_a_phone(live_server_url, processed_event, browser_page):  # noqa: F811
    """QR link → event page → consent → selfie → my photos in Chromium asking for French, each page checked."""
    from playwright.sync_api import expect

    page, event = browser_page, processed_event
    page.set_extra_http_headers({"Accept-Language": "fr-FR,fr;q=0.9"})

    def check(name: str) -> None:
        assert page.evaluate("document.documentElement.lang") == "fr", name
        text = readable_text(page.content())
        for username in User.objects.values_list("username", flat=True):  # names are data: "guest-…"
            text = text.replace(username, "")
        english = left_untranslated(text, "en", "fr")
        assert not english, f"English left on the {name} page: {english}"
        assert page.locator("input[type=password]").count() == 0, f"a password field on the {name} page"
        screenshot(page, f"fr-{name}")

    def fr(message: str) -> str:
        french = translated(message, "fr")
        assert french != message, f"no French for {message!r}"
        return french

    page.goto(f"{live_server_url}/e/{event.code}/")
    check("01-event-page")
    page.get_by_role("button", name=fr("Find my photos")).click()
    expect(page.get_by_role("heading", name=fr("Before your selfie"))).to_be_visible()
    check("02-consent")
    page.get_by_label(fr("I agree that photoevent stores a face template from my selfie to find my photos.")).check()
    page.get_by_role("button", name=fr("I agree, continue")).click()
    expect(page.get_by_role("heading", name=fr("Take a selfie"))).to_be_visible()
    check("03-selfie")
    page.get_by_label(fr("Your selfie")).set_input_files(
        {"name": "moi.png", "mimeType": "image/png", "buffer": scene_png([0])}
    )
    page.get_by_role("button", name=fr("Find my photos")).click()
    expect(page.get_by_text("C'est fait : vous apparaissez sur 2 photos.")).to_be_visible()
    expect(page.locator("ul.grid img")).to_have_count(2)
    check("04-my-photos")
    page.locator("ul.grid img").first.click()
    expect(page.get_by_role("link", name=fr("Download original"))).to_be_visible()
    check("05-photo")
    # The footer's switcher: English from here on, although the browser still asks for French.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("link", name="Download original")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
