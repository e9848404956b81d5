"""The Content-Security-Policy: on every page, strict, and templates that need nothing inline."""

from __future__ import annotations

import functools
import re
import runpy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, reverse

from gallery import urls as gallery_urls
from gallery.models import Event, Photo, PhotoArchive, PhotoStatus
from photoevent import settings as project_settings
from tests.conftest import png_upload
from tests.fakes import scene_png
from testsupport.paths import REPO

TEMPLATES = REPO / "templates"

# An inline <script> with a body, a style attribute, a <style> block, an inline
# event handler or a javascript: URL: each is refused by the policy.
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(?!\s*</script>)", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
STYLE_BLOCK = re.compile(r"<style\b", re.IGNORECASE)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)
INLINE_PATTERNS = {
    "inline <script>": INLINE_SCRIPT,
    "style attribute": INLINE_STYLE,
    "<style> block": STYLE_BLOCK,
    "inline event handler": HANDLER,
    "javascript: URL": JAVASCRIPT_URL,
}


def inline_parts(html: str) -> list[str]:
    """What in `html` a strict policy would refuse, by kind."""
    return [kind for kind, pattern in INLINE_PATTERNS.items() if pattern.search(html)]


def policy_of(response: Any) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as {directive: values}; empty if it has none."""
    directives = {}
    for part in response.get("Content-Security-Policy", "").split(";"):
        if part.strip():
            name, *values = part.split()
            directives[name] = values
    return directives


def test_the_policy_is_strict(client: Client) -> None:
    policy = policy_of(client.get(reverse("login")))
    assert policy, "no Content-Security-Policy header"
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    # Images also come from the S3 bucket that media requests redirect to.
    assert set(policy["img-src"]) <= {"'self'", "data:", *settings.CSP_MEDIA_ORIGINS}
    assert not any("unsafe" in value for values in policy.values() for value in values)


@pytest.mark.parametrize(
    ("env", "media_origins"),
    [
        ({}, []),
        (
            {"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "photos", "AWS_S3_REGION_NAME": "eu-west-3"},
            ["https://photos.s3.amazonaws.com", "https://photos.s3.eu-west-3.amazonaws.com"],
        ),
        (
            {"STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "photos", "AWS_S3_ENDPOINT_URL": "http://minio:9000/"},
            ["http://minio:9000"],
        ),
    ],
)
def test_images_may_come_from_the_s3_bucket_media_redirects_to(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], media_origins: list[str]
) -> None:
    for name in ("STORAGE_BACKEND", "AWS_STORAGE_BUCKET_NAME", "AWS_S3_REGION_NAME", "AWS_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CSP_MEDIA_ORIGINS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loaded = runpy.run_path(project_settings.__file__)
    assert loaded["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["img-src"] == ["'self'", "data:", *media_origins]


def test_templates_have_no_inline_script_or_style() -> None:
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for kind in inline_parts(path.read_text()):
            found.append(f"{path.relative_to(REPO)}: {kind}")
    assert not found, "move these to static/: " + "; ".join(found)


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        '<script type="module">x()</script>',
        '<p style="color: red">',
        "<style>p { color: red }</style>",
        '<a href="#" onclick="x()">',
        '<a href="javascript:x()">',
    ],
)
def test_the_scan_finds_inline_parts(html: str) -> None:
    assert inline_parts(html)


def test_the_scan_allows_external_scripts_and_styles() -> None:
    assert not inline_parts('<script src="/static/x.js" defer></script><link rel="stylesheet" href="/s.css">')


# --- Every page -------------------------------------------------------------------


@dataclass
class World:
    guest: User
    photographer: User
    staff: User
    event: Event
    photo: Photo


@pytest.fixture
def world(
    make_user: Callable[..., User],
    fake_backend: Any,
    client_for: Callable[[User], Any],
    django_capture_on_commit_callbacks: Any,
) -> World:
    photographer = make_user("photographer", photographer=True)
    guest = make_user("guest")
    staff = make_user("staff", staff=True)
    staff.is_superuser = True
    staff.save()
    event = Event.objects.create(owner=photographer, name="Wedding")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos",
            {"photos": [png_upload("p0.png", scene_png([0, 1]))]},
            format="multipart",
        )
    assert response.status_code == 202
    photo = Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])
    assert photo.status == PhotoStatus.DONE
    join = client_for(guest).post("/api/events/join", {"code": event.code}, format="json")
    assert join.status_code == 200
    selfie = client_for(guest).post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))})
    assert selfie.status_code == 200
    return World(guest, photographer, staff, event, photo)


@dataclass(frozen=True)
class Page:
    url_name: str
    role: str  # anonymous, guest, photographer or staff
    path: Callable[[World], str]
    method: str = "get"
    data: Callable[[World], dict[str, Any]] | None = None


def _event(name: str) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.event.pk])


def _photo(name: str) -> Callable[[World], str]:
    return lambda w: reverse(name, args=[w.photo.pk])


def _admin_url(model: Any, view: str, world: World) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}")


def _waiting_archive(world: World) -> str:
    """The page that waits for a ZIP being built: the guest's archive is still pending."""
    PhotoArchive.objects.get_or_create(
        user=world.guest, event=world.event, photos_key="waiting", defaults={"photo_ids": [world.photo.pk]}
    )
    return reverse("gallery-my-photos-archive", args=[world.event.pk])


PAGES = [
    Page("gallery-home", "anonymous", lambda w: reverse("gallery-home")),
    Page("gallery-home", "guest", lambda w: reverse("gallery-home")),
    Page("signup", "anonymous", lambda w: reverse("signup")),
    Page("login", "anonymous", lambda w: reverse("login")),
    Page("logout", "guest", lambda w: reverse("logout"), "post"),
    Page("gallery-email-link", "anonymous", lambda w: reverse("gallery-email-link")),
    Page("gallery-sign-in-link", "anonymous", lambda w: reverse("gallery-sign-in-link") + "?sesame=not-a-link"),
    Page("gallery-account", "guest", lambda w: reverse("gallery-account")),
    Page("gallery-unsubscribe", "anonymous", lambda w: reverse("gallery-unsubscribe", args=["not-a-token"])),
    Page("gallery-join", "guest", lambda w: reverse("gallery-join"), "post", lambda w: {"code": w.event.code}),
    Page("gallery-join-link", "anonymous", lambda w: reverse("gallery-join-link", args=[w.event.code])),
    Page("gallery-join-link", "guest", lambda w: reverse("gallery-join-link", args=[w.event.code])),
    Page("gallery-consent", "guest", lambda w: reverse("gallery-consent")),
    Page("gallery-selfie", "guest", lambda w: reverse("gallery-selfie")),
    Page("gallery-live-selfie", "guest", lambda w: reverse("gallery-live-selfie")),
    # With the event's QR code, drawn as inline SVG.
    Page(
        "gallery-live-selfie",
        "guest",
        lambda w: f"{reverse('gallery-live-selfie')}?next={reverse('gallery-my-photos', args=[w.event.pk])}",
    ),
    Page("gallery-my-photos", "guest", _event("gallery-my-photos")),
    Page("gallery-all-photos", "guest", _event("gallery-all-photos")),
    Page("gallery-my-photos-zip", "guest", _event("gallery-my-photos-zip")),
    Page("gallery-my-photos-archive", "guest", lambda w: _waiting_archive(w)),
    Page("gallery-my-photos-archive-status", "guest", _event("gallery-my-photos-archive-status")),
    Page("gallery-photo", "guest", _photo("gallery-photo")),
    Page("gallery-photo-not-me", "guest", _photo("gallery-photo-not-me"), "post"),
    Page("gallery-hidden-photos", "guest", _event("gallery-hidden-photos")),
    Page("gallery-photo-not-me-undo", "guest", _photo("gallery-photo-not-me-undo"), "post"),
    Page("gallery-photo-me", "guest", _photo("gallery-photo-me"), "post"),
    Page(
        "gallery-photo-face",
        "guest",
        lambda w: reverse("gallery-photo-face", args=[w.photo.pk, w.photo.faces.all()[0].pk]),
    ),
    Page("gallery-face-data", "guest", lambda w: reverse("gallery-face-data")),
    Page("gallery-delete-account", "guest", lambda w: reverse("gallery-delete-account")),
    Page("gallery-deleted", "guest", lambda w: reverse("gallery-deleted")),
    Page("gallery-studio", "photographer", lambda w: reverse("gallery-studio")),
    Page("gallery-studio-event", "photographer", _event("gallery-studio-event")),
    Page("gallery-studio-qr-png", "photographer", _event("gallery-studio-qr-png")),
    Page("gallery-studio-qr-svg", "photographer", _event("gallery-studio-qr-svg")),
    Page(
        "gallery-studio-event-visibility",
        "photographer",
        _event("gallery-studio-event-visibility"),
        "post",
        lambda w: {"visibility": w.event.visibility},
    ),
    Page("gallery-studio-event-watermark", "photographer", _event("gallery-studio-event-watermark")),
    Page("gallery-studio-event-people", "photographer", _event("gallery-studio-event-people")),
    Page("gallery-studio-event-quality", "photographer", _event("gallery-studio-event-quality")),
    Page(
        "gallery-face-crop",
        "photographer",
        lambda w: reverse("gallery-face-crop", args=[w.photo.faces.values_list("pk", flat=True).first() or 0]),
    ),
    Page("gallery-studio-event-delete", "photographer", _event("gallery-studio-event-delete")),
    # The upload form without JavaScript: no file is a 400 page.
    Page("gallery-studio-event-upload", "photographer", _event("gallery-studio-event-upload"), "post"),
    Page(
        "gallery-studio-event-photographers",
        "photographer",
        _event("gallery-studio-event-photographers"),
        "post",
        lambda w: {"username": "nobody"},
    ),
    Page(
        "gallery-studio-event-photographer-remove",
        "photographer",
        lambda w: reverse("gallery-studio-event-photographer-remove", args=[w.event.pk, "nobody"]),
        "post",
    ),
    Page("gallery-studio-photo-delete", "photographer", _photo("gallery-studio-photo-delete")),
    Page("gallery-photo-file", "guest", lambda w: reverse("gallery-photo-file", args=[w.photo.pk, "thumbnail"])),
    # Error pages.
    Page("404", "anonymous", lambda w: "/no-such-page/"),
    Page("403", "guest", _event("gallery-studio-event")),
    # The admin, and the monitoring page beside it.
    Page("admin-login", "anonymous", lambda w: reverse("admin:login")),
    Page("admin-index", "staff", lambda w: reverse("admin:index")),
    Page("admin-monitoring", "staff", lambda w: reverse("admin-monitoring")),
    Page("admin-photo-change", "staff", lambda w: reverse("admin:gallery_photo_change", args=[w.photo.pk])),
] + [
    Page(f"admin-{model._meta.label_lower}-{view}", "staff", functools.partial(_admin_url, model, view))
    for model in admin.site._registry
    for view in ("changelist", "add")
]


def test_every_gallery_page_is_in_the_table() -> None:
    names = {p.name for p in gallery_urls.urlpatterns if isinstance(p, URLPattern)}
    assert names <= {page.url_name for page in PAGES}, f"pages without a row: {names - {p.url_name for p in PAGES}}"


@pytest.mark.django_db
def test_every_page_carries_the_policy_and_renders_nothing_inline(world: World) -> None:
    users = {"guest": world.guest, "photographer": world.photographer, "staff": world.staff}
    strict = policy_of(Client().get(reverse("login")))
    assert strict["script-src"] == ["'self'"]
    problems = []
    for page in PAGES:
        client = Client()
        if page.role in users:
            client.force_login(users[page.role])
        path = page.path(world)
        data = page.data(world) if page.data else {}
        response = client.post(path, data) if page.method == "post" else client.get(path)
        if response.status_code >= 500:
            problems.append(f"{page.url_name} as {page.role}: {response.status_code}")
            continue
        if policy_of(response) != strict:
            problems.append(f"{page.url_name} as {page.role}: policy {response.get('Content-Security-Policy')!r}")
        if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
            for kind in inline_parts(response.content.decode()):
                problems.append(f"{page.url_name} as {page.role}: {kind}")
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_admin_photo_page_draws_face_boxes_without_inline_style(world: World) -> None:
    client = Client()
    client.force_login(world.staff)
    html = client.get(reverse("admin:gallery_photo_change", args=[world.photo.pk])).content.decode()
    assert html.count("<rect ") == world.photo.faces.count() == 2
    assert "css/admin.css" in html
