"""The staff admin in French and English: model names, column headers and filters come from the models.

The admin shows each model's `verbose_name_plural` and each field's
`verbose_name`, so every model and every concrete field of the gallery and
processing apps carries a lazy translation: a field added without one fails
`test_every_field_has_a_translated_verbose_name`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.test import Client
from django.test.utils import isolate_apps
from django.utils import translation
from django.utils.functional import Promise
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy
from knox.models import AbstractAuthToken

from gallery.models import Event, Photo

pytestmark = pytest.mark.django_db

APPS = ("gallery", "processing")
# Names that French writes as English does; any other name must differ in French.
SAME_IN_BOTH = {"backend", "code", "date", "image", "photo", "photos", "selfie", "selfies", "worker"}
# gallery.ApiToken inherits these from django-rest-knox, whose labels are knox's
# own (the model has no admin page); only the fields it adds are ours to name.
KNOX_FIELDS = {field.name for field in AbstractAuthToken._meta.local_fields}
COLUMN_HEADER = re.compile(r'<th scope="col"\s+class="[^"]*\bcolumn-(\w+)\b[^"]*">(.*?)</th>', re.DOTALL)
FILTER_TITLE = re.compile(r"<summary>(.*?)</summary>", re.DOTALL)
# Column headers of the photo changelist, by field or method name.
PHOTO_COLUMNS_FR = {
    "filename": "Nom du fichier",
    "event": "Événement",
    "status": "Statut",
    "attempts": "Tentatives",
    "face_count": "Nombre de visages",
    "created_at": "Créé le",
    "duration": "Durée",
}
PHOTO_COLUMNS_EN = {
    "filename": "File name",
    "event": "Event",
    "status": "Status",
    "attempts": "Attempts",
    "face_count": "Face count",
    "created_at": "Created at",
    "duration": "Duration",
}


def our_models() -> Iterator[type[models.Model]]:
    """Every model of the gallery and processing apps."""
    for label in APPS:
        yield from apps.get_app_config(label).get_models()


def named_fields(model: type[models.Model]) -> Iterator[models.Field]:
    """The concrete fields of `model` that we name: not the implicit `id`, not those knox defines."""
    for field in model._meta.concrete_fields:
        if field.auto_created or (issubclass(model, AbstractAuthToken) and field.name in KNOX_FIELDS):
            continue
        yield field


def in_language(text: object, language: str) -> str:
    """`text` as `language` reads it."""
    with translation.override(language):
        return str(text)


def text_of(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def column_headers(page: str) -> dict[str, str]:
    """A changelist's column headers, by field or method name."""
    return {name: text_of(header) for name, header in COLUMN_HEADER.findall(page)}


def filter_titles(page: str) -> list[str]:
    """The titles of a changelist's filters ("By status")."""
    return [text_of(title) for title in FILTER_TITLE.findall(page)]


@pytest.fixture(autouse=True)
def back_to_default_language() -> Iterator[None]:
    # The test client's requests activate their language in this thread; the
    # rest of the suite expects the default again.
    yield
    translation.deactivate()


@pytest.fixture
def superuser_client(make_user: Callable[..., User]) -> Client:
    """A client logged in as a superuser: the admin's model pages need permissions."""
    user = make_user("admin", staff=True)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def photo(event: Event) -> Photo:
    """A queued photo, so that the photo changelist shows its table."""
    return Photo.objects.create(
        event=event, filename="dance.jpg", sha256="0" * 64, format="jpeg", original="events/1/originals/a.jpg"
    )


def get(client: Client, url: str, language: str) -> str:
    """The admin page at `url` as a browser asking for `language` gets it (LocaleMiddleware's Accept-Language)."""
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, f"{url}: {response.status_code}"
    page = response.content.decode()
    assert f'<html lang="{language}"' in page, f"{url} is not in {language}"
    return page


def test_photo_changelist_in_french(superuser_client: Client, photo: Photo) -> None:
    page = get(superuser_client, "/admin/gallery/photo/", "fr")
    headers = column_headers(page)
    assert PHOTO_COLUMNS_FR.items() <= headers.items(), headers
    assert "Par statut" in filter_titles(page)
    assert "dance.jpg" in page
    assert not set(PHOTO_COLUMNS_EN.values()) & set(headers.values()), headers
    assert not re.search(r">\s*(Status|Attempts|Face count|Created at)\s*<", page)


def test_photo_changelist_in_english(superuser_client: Client, photo: Photo) -> None:
    page = get(superuser_client, "/admin/gallery/photo/", "en")
    headers = column_headers(page)
    assert PHOTO_COLUMNS_EN.items() <= headers.items(), headers
    assert "By status" in filter_titles(page)
    assert not re.search(r">\s*(Statut|Tentatives|Nombre de visages)\s*<", page)


def test_event_changelist_in_french(superuser_client: Client, event: Event) -> None:
    page = get(superuser_client, "/admin/gallery/event/", "fr")
    headers = column_headers(page)
    assert {"name": "Nom", "owner": "Propriétaire", "visibility": "Visibilité"}.items() <= headers.items(), headers
    assert "Par visibilité" in filter_titles(page)
    # The model's names: the page title and the breadcrumbs.
    assert "objet événement à changer</h1>" in page
    assert re.search(r"&rsaquo;\s*Événements\s*</div>", page)
    assert not re.search(r">\s*(Events|Owner|Visibility)\s*<", page)
    assert "Select event to change" not in page


def test_admin_index_lists_every_model_in_french_and_in_english(superuser_client: Client) -> None:
    ours = [model for model in our_models() if admin.site.is_registered(model)]
    assert len(ours) >= 10, "the admin registry of the gallery and processing apps"
    for language in ("fr", "en"):
        page = html.unescape(get(superuser_client, "/admin/", language))
        for model in ours:
            name = capfirst(in_language(model._meta.verbose_name_plural, language))
            assert f">{name}</a>" in page, f"{model.__name__} is not listed as {name!r} in {language}"
    french = html.unescape(get(superuser_client, "/admin/", "fr"))
    for english in ("Alert deliveries", "Events", "Memberships", "Matches", "Photo archives"):
        assert f">{english}</a>" not in french


def naming_problems(model: type[models.Model]) -> list[str]:
    """What is wrong with the names of `model` and of its fields: missing, plain text, or with no French."""
    problems = [
        f"{model.__name__}.Meta.{what} is not set"
        for what in ("verbose_name", "verbose_name_plural")
        if what not in model._meta.original_attrs
    ]
    names: list[tuple[str, object]] = [
        ("verbose_name", model._meta.verbose_name),
        ("verbose_name_plural", model._meta.verbose_name_plural),
    ]
    names += [(field.name, field.verbose_name) for field in named_fields(model)]
    for what, name in names:
        if not isinstance(name, Promise):
            problems.append(f"{model.__name__}.{what}: {name!r} is not a gettext_lazy() translation")
            continue
        english, french = in_language(name, "en"), in_language(name, "fr")
        if french == english and english not in SAME_IN_BOTH:
            problems.append(f"{model.__name__}.{what}: {english!r} has no French")
    return problems


@pytest.mark.parametrize("model", list(our_models()), ids=lambda model: model.__name__)
def test_every_field_has_a_translated_verbose_name(model: type[models.Model]) -> None:
    problems = naming_problems(model)
    assert not problems, (
        "name them with verbose_name=gettext_lazy(...), then bash scripts/messages and translate:\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize("model", list(our_models()), ids=lambda model: model.__name__)
def test_every_choice_label_is_translated(model: type[models.Model]) -> None:
    for field in named_fields(model):
        for value, label in field.flatchoices:
            assert isinstance(label, Promise), f"{model.__name__}.{field.name}: the label of {value!r} is plain text"
            assert in_language(label, "fr") != in_language(label, "en"), f"no French for {label!r}"


@isolate_apps("gallery")
def test_the_check_finds_names_left_untranslated() -> None:
    class Poster(models.Model):
        title = models.CharField(max_length=8)
        caption = models.CharField(max_length=8, verbose_name="caption")
        mood = models.CharField(max_length=8, verbose_name=gettext_lazy("poster mood"))
        status = models.CharField(max_length=8, verbose_name=gettext_lazy("status"))
        code = models.CharField(max_length=8, verbose_name=gettext_lazy("code"))

        class Meta:
            app_label = "gallery"
            verbose_name = gettext_lazy("photo")

        def __str__(self) -> str:
            return self.title

    assert naming_problems(Poster) == [
        "Poster.Meta.verbose_name_plural is not set",
        "Poster.title: 'title' is not a gettext_lazy() translation",
        "Poster.caption: 'caption' is not a gettext_lazy() translation",
        "Poster.mood: 'poster mood' has no French",
    ]
