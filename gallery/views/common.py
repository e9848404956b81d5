"""What the pages of every audience share: the `next` parameter, the event a guest came from, messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest
from django.urls import Resolver404, resolve, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy

from gallery.access import AnyUser, event_by_code, joined_events
from gallery.models import Event

if TYPE_CHECKING:
    from django.contrib.auth.models import User

BACKEND_DOWN = gettext_lazy(
    "The face-recognition service did not answer, so not everything could be deleted. Try again in a minute."
)


def page_user(request: HttpRequest) -> User:
    """The logged-in user; only for views behind `login_required`."""
    return cast("User", request.user)


def with_next(url_name: str, next_url: str) -> str:
    """The URL of `url_name` that comes back to `next_url` when done."""
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def next_url(request: HttpRequest, default: str) -> str:
    """The local `next` URL the request carries, or `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def event_from_url(url: str, user: AnyUser) -> Event | None:
    """The event a local URL is about (join link, my photos, all photos), if `user` may know it.

    Lets sign-up, consent and selfie pages name the event the guest came from. A
    join link names its event to anyone (the code is the key); an event id only
    to those who may see the event, so that ids do not leak.
    """
    try:
        match = resolve(urlsplit(url).path)
    except Resolver404:
        return None
    if "event_id" in match.kwargs:
        event = Event.cached(int(match.kwargs["event_id"]))
        return event if event is not None and event.can_view(user) else None
    if match.url_name == "gallery-join-link":
        return event_by_code(str(match.kwargs["code"]))
    return None


def default_next(user: AnyUser) -> str:
    """Where a guest goes after consent or a selfie when no page asked: their only event, or home."""
    joined = list(joined_events(user).values_list("pk", flat=True)[:2])
    if len(joined) == 1:
        return reverse("gallery-my-photos", args=[joined[0]])
    return reverse("gallery-home")
